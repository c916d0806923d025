//! Service tests against a real PostgreSQL: `#[sqlx::test]` creates a fresh database per test
//! on the server in `DATABASE_URL` and applies `migrations/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, Utc};
use contracts::{event_types, topics};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::*;
use crate::domain::{COUNT_AHEAD, Priority, SearchQuery, SortBy, SortOrder, StatusFilter};

/// A clock that starts at the real time and advances 1 ms per reading, so creation order is
/// strict and "future" means the same as for a real clock.
fn ticking_clock() -> Clock {
    let start = Utc::now();
    let ticks = Arc::new(AtomicI64::new(0));
    Arc::new(move || start + Duration::milliseconds(ticks.fetch_add(1, Ordering::Relaxed)))
}

fn service(pool: PgPool) -> (TaskService, Arc<Notify>) {
    let waker = Arc::new(Notify::new());
    let svc = TaskService::new(pool, Arc::clone(&waker)).with_clock(ticking_clock());
    (svc, waker)
}

fn alice() -> AuthUser {
    AuthUser {
        id: "auth0|alice".into(),
        email: Some("alice@example.com".into()),
        name: Some("Alice".into()),
    }
}

fn bob() -> AuthUser {
    AuthUser::new("bob")
}

fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        ..NewTask::default()
    }
}

/// One outbox row as the tests look at it.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: Uuid,
    topic: String,
    event_type: String,
    aggregate_id: Uuid,
    event: Value,
}

impl Row {
    fn changed(&self) -> Vec<String> {
        self.event["data"]["changed_fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn outbox(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as("SELECT id, topic, event_type, aggregate_id, event FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn outbox_types(pool: &PgPool) -> Vec<(String, String)> {
    outbox(pool)
        .await
        .into_iter()
        .map(|r| (r.topic, r.event_type))
        .collect()
}

fn events(types: &[&str]) -> Vec<(String, String)> {
    types
        .iter()
        .map(|t| (topics::TASK_EVENTS.to_owned(), (*t).to_owned()))
        .collect()
}

async fn clear_outbox(pool: &PgPool) {
    sqlx::query("DELETE FROM outbox")
        .execute(pool)
        .await
        .unwrap();
}

/// How many of `user`'s tasks a search for `words` finds.
async fn search_total(svc: &TaskService, user: &AuthUser, words: &str) -> i64 {
    svc.search_tasks(user, &SearchQuery::words(words))
        .await
        .unwrap()
        .total
}

fn woken(waker: &Notify) -> bool {
    waker.notified().now_or_never().is_some()
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(result: Result<T, ServiceError>, code: &str) -> ServiceError {
    match result {
        Ok(v) => panic!("expected {code}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code(), code, "{e:?}");
            e
        }
    }
}

#[track_caller]
fn assert_field<T: std::fmt::Debug>(result: Result<T, ServiceError>, field: &str) {
    match assert_code(result, "VALIDATION_ERROR") {
        ServiceError::Validation { field: f, .. } => assert_eq!(f, Some(field)),
        other => panic!("{other:?}"),
    }
}

#[sqlx::test]
async fn create_and_get_task(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let due = Utc::now() + Duration::days(2);
    let task = svc
        .create_task(
            &alice(),
            NewTask {
                title: "  Water the plants ".into(),
                description: Some("balcony".into()),
                priority: Some(Priority::High),
                due_at: Some(due),
                remind_at: Some(due - Duration::hours(1)),
                recurrence_rule: Some("rrule:freq=weekly;byday=fr,mo".into()),
                ..NewTask::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(task.title, "Water the plants");
    assert_eq!(task.description, "balcony");
    assert_eq!(task.priority, Priority::High);
    assert!(!task.completed && task.completed_at.is_none());
    assert_eq!(
        task.recurrence_rule.as_deref(),
        Some("FREQ=WEEKLY;BYDAY=MO,FR")
    );
    assert_eq!(task.due_at, Some(micros(due)));
    assert_eq!(task.occurrence_index, 0);
    assert_eq!(task.parent_task_id, None);
    assert!(woken(&waker));

    let got = svc.get_task(&alice(), task.id).await.unwrap();
    assert_eq!(got, task);

    let defaults = svc.create_task(&alice(), new_task("t")).await.unwrap();
    assert_eq!(defaults.priority, Priority::Medium);
    assert_eq!(defaults.description, "");
    assert!(defaults.tags.is_empty() && defaults.category.is_none());

    let rows = outbox(&pool).await;
    assert_eq!(rows.len(), 2);
    let row = &rows[0];
    assert_eq!(row.topic, topics::TASK_EVENTS);
    assert_eq!(row.event_type, event_types::TASK_CREATED);
    assert_eq!(row.aggregate_id, task.id);
    let ev = &row.event;
    assert_eq!(ev["id"], row.id.to_string());
    assert_eq!(row.id.get_version_num(), 7);
    assert_eq!(ev["type"], event_types::TASK_CREATED);
    assert_eq!(ev["source"], "/todo/backend");
    assert_eq!(ev["specversion"], "1.0");
    assert_eq!(ev["subject"], task.id.to_string());
    assert_eq!(ev["datacontenttype"], "application/json");
    assert_eq!(ev["data"]["user_id"], "auth0|alice");
    assert_eq!(ev["data"]["task"]["title"], "Water the plants");
    assert_eq!(ev["data"]["task"]["user_id"], "auth0|alice");
    assert!(ev["data"].get("changed_fields").is_none());
    let data: contracts::TaskEventData = serde_json::from_value(ev["data"].clone()).unwrap();
    assert_eq!(data.task, snapshot("auth0|alice", &task));
}

#[sqlx::test]
async fn create_task_rejects_bad_input_and_writes_nothing(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let now = Utc::now();
    assert_field(svc.create_task(&a, new_task("   ")).await, "title");
    assert_field(
        svc.create_task(&a, new_task(&"x".repeat(201))).await,
        "title",
    );
    let bad_rule = NewTask {
        recurrence_rule: Some("FREQ=HOURLY".into()),
        ..new_task("t")
    };
    assert_field(svc.create_task(&a, bad_rule).await, "recurrence_rule");
    let past_reminder = NewTask {
        remind_at: Some(now - Duration::minutes(1)),
        ..new_task("t")
    };
    assert_field(svc.create_task(&a, past_reminder).await, "remind_at");
    let late_reminder = NewTask {
        due_at: Some(now + Duration::hours(1)),
        remind_at: Some(now + Duration::hours(2)),
        ..new_task("t")
    };
    assert_field(svc.create_task(&a, late_reminder).await, "remind_at");
    let too_many_tags = NewTask {
        tag_ids: (0..11u128).map(Uuid::from_u128).collect(),
        ..new_task("t")
    };
    assert_code(svc.create_task(&a, too_many_tags).await, "LIMIT_EXCEEDED");
    let unknown_category = NewTask {
        category_id: Some(Uuid::now_v7()),
        ..new_task("t")
    };
    match assert_code(svc.create_task(&a, unknown_category).await, "NOT_FOUND") {
        ServiceError::NotFound { entity, .. } => assert_eq!(entity, "category"),
        other => panic!("{other:?}"),
    }
    let unknown_tag = NewTask {
        tag_ids: vec![Uuid::now_v7()],
        ..new_task("t")
    };
    assert_code(svc.create_task(&a, unknown_tag).await, "NOT_FOUND");

    let page = svc.list_tasks(&a, &TaskFilter::default()).await.unwrap();
    assert_eq!(page.total, 0);
    assert!(outbox(&pool).await.is_empty());
}

#[sqlx::test]
async fn create_task_with_category_and_tags(pool: PgPool) {
    let (svc, _) = service(pool);
    let a = alice();
    let home = svc
        .create_category(
            &a,
            NewCategory {
                name: "Home".into(),
                color: Some("#22aa66".into()),
            },
        )
        .await
        .unwrap();
    let z = svc
        .create_tag(
            &a,
            NewTag {
                name: "zeta".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let b = svc
        .create_tag(
            &a,
            NewTag {
                name: "Beta".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let task = svc
        .create_task(
            &a,
            NewTask {
                category_id: Some(home.id),
                tag_ids: vec![z.id, b.id, z.id],
                ..new_task("t")
            },
        )
        .await
        .unwrap();
    let cat = task.category.unwrap();
    assert_eq!(
        (cat.id, cat.name.as_str(), cat.color.as_deref()),
        (home.id, "Home", Some("#22AA66"))
    );
    let tag_names: Vec<_> = task.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        tag_names,
        ["Beta", "zeta"],
        "tags are ordered by name, duplicates dropped"
    );
}

/// Creates the fixture of the list tests; returns the tasks in creation order.
async fn list_fixture(svc: &TaskService) -> (Vec<Task>, Uuid, Uuid, Uuid) {
    let a = alice();
    let work = svc
        .create_category(
            &a,
            NewCategory {
                name: "Work".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let red = svc
        .create_tag(
            &a,
            NewTag {
                name: "red".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let blue = svc
        .create_tag(
            &a,
            NewTag {
                name: "blue".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let base = Utc::now() + Duration::days(10);
    let specs = [
        ("a", Priority::Low, Some(1), Some(work.id), vec![red.id]),
        ("b", Priority::Urgent, Some(3), None, vec![blue.id]),
        ("c", Priority::Medium, None, Some(work.id), vec![]),
        ("d", Priority::High, Some(2), None, vec![red.id, blue.id]),
        ("e", Priority::Medium, Some(5), None, vec![]),
    ];
    let mut tasks = Vec::new();
    for (title, priority, due_days, category_id, tag_ids) in specs {
        let t = svc
            .create_task(
                &a,
                NewTask {
                    title: title.into(),
                    priority: Some(priority),
                    due_at: due_days.map(|d| base + Duration::days(d)),
                    category_id,
                    tag_ids,
                    ..NewTask::default()
                },
            )
            .await
            .unwrap();
        tasks.push(t);
    }
    svc.complete_task(&a, tasks[4].id).await.unwrap();
    // Another user's task never shows up.
    svc.create_task(&bob(), new_task("bob's")).await.unwrap();
    (tasks, work.id, red.id, blue.id)
}

async fn titles(svc: &TaskService, filter: TaskFilter) -> Vec<String> {
    let page = svc.list_tasks(&alice(), &filter).await.unwrap();
    assert_eq!(
        page.items.len() as i64,
        page.total.min(i64::from(page.limit))
    );
    page.items.into_iter().map(|t| t.title).collect()
}

#[sqlx::test]
async fn list_filters(pool: PgPool) {
    let (svc, _) = service(pool);
    let (tasks, work, red, blue) = list_fixture(&svc).await;
    let f = TaskFilter::default;
    assert_eq!(titles(&svc, f()).await, ["e", "d", "c", "b", "a"]);
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                status: StatusFilter::Pending,
                ..f()
            }
        )
        .await,
        ["d", "c", "b", "a"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                status: StatusFilter::Completed,
                ..f()
            }
        )
        .await,
        ["e"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                priority: Some(Priority::Medium),
                ..f()
            }
        )
        .await,
        ["e", "c"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                category_id: Some(work),
                ..f()
            }
        )
        .await,
        ["c", "a"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                tag_ids: vec![red],
                ..f()
            }
        )
        .await,
        ["d", "a"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                tag_ids: vec![red, blue],
                ..f()
            }
        )
        .await,
        ["d", "b", "a"],
        "tags are any-of, each task once"
    );
    let due = |i: usize| tasks[i].due_at.unwrap();
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                due_before: Some(due(1)),
                ..f()
            }
        )
        .await,
        ["d", "a"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                due_after: Some(due(3)),
                ..f()
            }
        )
        .await,
        ["e", "b"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                due_after: Some(due(0)),
                due_before: Some(due(4)),
                ..f()
            }
        )
        .await,
        ["d", "b"]
    );
    assert_eq!(
        titles(
            &svc,
            TaskFilter {
                status: StatusFilter::Pending,
                priority: Some(Priority::High),
                tag_ids: vec![blue],
                ..f()
            }
        )
        .await,
        ["d"]
    );
    let bad_range = TaskFilter {
        due_after: Some(due(4)),
        due_before: Some(due(0)),
        ..f()
    };
    assert_field(svc.list_tasks(&alice(), &bad_range).await, "due_before");
    // Someone else's category id simply matches nothing.
    let page = svc
        .list_tasks(
            &bob(),
            &TaskFilter {
                category_id: Some(work),
                ..f()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}

/// A list and a search count at most `COUNT_AHEAD` matches past the end of the page: exact
/// below that, and a lower bound that still says "there is more" above it.
#[sqlx::test]
async fn totals_are_exact_up_to_count_ahead_past_the_page(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let user = alice();
    svc.upsert_user(&user).await.unwrap();
    let tasks = i64::from(COUNT_AHEAD) + 3;
    sqlx::query(
        "INSERT INTO tasks (id, user_id, title, priority, created_at, updated_at) \
         SELECT gen_random_uuid(), $1, 'invoice ' || g, 'medium', now(), now() \
         FROM generate_series(1, $2) AS g",
    )
    .bind(&user.id)
    .bind(tasks)
    .execute(&pool)
    .await
    .unwrap();
    let page = |limit, offset| TaskFilter {
        limit,
        offset,
        ..TaskFilter::default()
    };
    let counted = |p: &Page<Task>| (p.total, p.total_exact);
    let ahead = i64::from(COUNT_AHEAD);
    // The bound is offset + limit + COUNT_AHEAD.
    let first = svc.list_tasks(&user, &page(1, 0)).await.unwrap();
    assert_eq!(counted(&first), (ahead + 1, false));
    assert_eq!(first.items.len(), 1);
    let two = svc.list_tasks(&user, &page(2, 0)).await.unwrap();
    assert_eq!(counted(&two), (ahead + 2, false));
    let three = svc.list_tasks(&user, &page(3, 0)).await.unwrap();
    assert_eq!(
        counted(&three),
        (tasks, true),
        "the bound reaches every match"
    );
    let later = svc.list_tasks(&user, &page(1, 5)).await.unwrap();
    assert_eq!(counted(&later), (tasks, true));

    let search = |limit| SearchQuery {
        limit,
        ..SearchQuery::words("invoice")
    };
    let found = svc.search_tasks(&user, &search(1)).await.unwrap();
    assert_eq!(counted(&found), (ahead + 1, false));
    let found = svc.search_tasks(&user, &search(3)).await.unwrap();
    assert_eq!(counted(&found), (tasks, true));
}

#[sqlx::test]
async fn list_sorts_and_pages(pool: PgPool) {
    let (svc, _) = service(pool);
    list_fixture(&svc).await;
    let f = TaskFilter::default;
    let sorted = |sort, order| TaskFilter { sort, order, ..f() };
    assert_eq!(
        titles(&svc, sorted(SortBy::Created, Some(SortOrder::Asc))).await,
        ["a", "b", "c", "d", "e"]
    );
    // Due: soonest first by default, tasks without a due date last in both directions.
    assert_eq!(
        titles(&svc, sorted(SortBy::Due, None)).await,
        ["a", "d", "b", "e", "c"]
    );
    assert_eq!(
        titles(&svc, sorted(SortBy::Due, Some(SortOrder::Desc))).await,
        ["e", "b", "d", "a", "c"]
    );
    // Priority: most urgent first by default; equal priorities newest first.
    assert_eq!(
        titles(&svc, sorted(SortBy::Priority, None)).await,
        ["b", "d", "e", "c", "a"]
    );
    assert_eq!(
        titles(&svc, sorted(SortBy::Priority, Some(SortOrder::Asc))).await,
        ["a", "e", "c", "d", "b"]
    );

    let page = svc
        .list_tasks(
            &alice(),
            &TaskFilter {
                limit: 2,
                offset: 1,
                ..f()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.total, page.limit, page.offset), (5, 2, 1));
    let got: Vec<_> = page.items.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(got, ["d", "c"]);
    let past_end = svc
        .list_tasks(&alice(), &TaskFilter { offset: 10, ..f() })
        .await
        .unwrap();
    assert_eq!((past_end.total, past_end.items.len()), (5, 0));
    let clamped = svc
        .list_tasks(&alice(), &TaskFilter { limit: 5000, ..f() })
        .await
        .unwrap();
    assert_eq!(clamped.limit, 200);
    let default = svc
        .list_tasks(&alice(), &TaskFilter { limit: 0, ..f() })
        .await
        .unwrap();
    assert_eq!(default.limit, 50);
}

#[sqlx::test]
async fn update_task_changes_and_clears_fields(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let a = alice();
    let cat = svc
        .create_category(
            &a,
            NewCategory {
                name: "c".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let due = Utc::now() + Duration::days(1);
    let task = svc
        .create_task(
            &a,
            NewTask {
                category_id: Some(cat.id),
                due_at: Some(due),
                recurrence_rule: Some("FREQ=DAILY".into()),
                ..new_task("old")
            },
        )
        .await
        .unwrap();
    clear_outbox(&pool).await;
    assert!(woken(&waker));

    let updated = svc
        .update_task(
            &a,
            task.id,
            TaskPatch {
                title: Some(" new ".into()),
                priority: Some(Priority::Urgent),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "new");
    assert_eq!(updated.priority, Priority::Urgent);
    assert_eq!(updated.due_at, task.due_at, "absent fields stay");
    assert!(updated.updated_at > task.updated_at);
    assert!(woken(&waker));

    let cleared = svc
        .update_task(
            &a,
            task.id,
            TaskPatch {
                category_id: Some(None),
                due_at: Some(None),
                recurrence_rule: Some(None),
                description: Some("now with text".into()),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.category, None);
    assert_eq!(cleared.due_at, None);
    assert_eq!(cleared.recurrence_rule, None);
    assert_eq!(cleared.description, "now with text");
    assert!(woken(&waker));

    // A patch that changes nothing writes and emits nothing.
    let same = svc
        .update_task(
            &a,
            task.id,
            TaskPatch {
                title: Some("new".into()),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same, cleared);
    assert!(!woken(&waker));
    let same = svc
        .update_task(&a, task.id, TaskPatch::default())
        .await
        .unwrap();
    assert_eq!(same, cleared);

    let rows = outbox(&pool).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.event_type == event_types::TASK_UPDATED)
    );
    assert_eq!(rows[0].changed(), ["title", "priority"]);
    assert_eq!(
        rows[1].changed(),
        ["description", "category", "due_at", "recurrence_rule"]
    );
    assert_eq!(rows[1].event["data"]["task"]["due_at"], Value::Null);

    // Completing and reopening through update_task.
    clear_outbox(&pool).await;
    let done = svc
        .update_task(
            &a,
            task.id,
            TaskPatch {
                completed: Some(true),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(done.completed && done.completed_at.is_some());
    let reopened = svc
        .update_task(
            &a,
            task.id,
            TaskPatch {
                completed: Some(false),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(!reopened.completed && reopened.completed_at.is_none());
    let rows = outbox(&pool).await;
    assert_eq!(
        rows.iter()
            .map(|r| r.event_type.as_str())
            .collect::<Vec<_>>(),
        [event_types::TASK_COMPLETED, event_types::TASK_UPDATED]
    );
    assert_eq!(rows[1].changed(), ["completed", "completed_at"]);
}

#[sqlx::test]
async fn update_task_validates(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let now = Utc::now();
    let due = now + Duration::days(1);
    let task = svc
        .create_task(
            &a,
            NewTask {
                due_at: Some(due),
                remind_at: Some(due - Duration::hours(2)),
                ..new_task("t")
            },
        )
        .await
        .unwrap();
    let patch = |p: TaskPatch| svc.update_task(&a, task.id, p);
    assert_field(
        patch(TaskPatch {
            title: Some("".into()),
            ..TaskPatch::default()
        })
        .await,
        "title",
    );
    assert_field(
        patch(TaskPatch {
            recurrence_rule: Some(Some("FREQ=DAILY;BYHOUR=9".into())),
            ..TaskPatch::default()
        })
        .await,
        "recurrence_rule",
    );
    assert_field(
        patch(TaskPatch {
            remind_at: Some(Some(now - Duration::hours(1))),
            ..TaskPatch::default()
        })
        .await,
        "remind_at",
    );
    // Moving the due date before the pending reminder is refused …
    assert_field(
        patch(TaskPatch {
            due_at: Some(Some(due - Duration::hours(3))),
            ..TaskPatch::default()
        })
        .await,
        "remind_at",
    );
    // … unless the reminder moves too.
    let moved = patch(TaskPatch {
        due_at: Some(Some(due - Duration::hours(3))),
        remind_at: Some(Some(due - Duration::hours(4))),
        ..TaskPatch::default()
    })
    .await
    .unwrap();
    assert_eq!(moved.remind_at, Some(micros(due - Duration::hours(4))));
    assert_code(
        patch(TaskPatch {
            category_id: Some(Some(Uuid::now_v7())),
            ..TaskPatch::default()
        })
        .await,
        "NOT_FOUND",
    );
    assert_code(
        svc.update_task(&a, Uuid::now_v7(), TaskPatch::default())
            .await,
        "TASK_NOT_FOUND",
    );
}

#[sqlx::test]
async fn delete_task_emits_last_state(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let a = alice();
    let task = svc.create_task(&a, new_task("bye")).await.unwrap();
    clear_outbox(&pool).await;
    let _ = woken(&waker);
    svc.delete_task(&a, task.id).await.unwrap();
    assert!(woken(&waker));
    assert_code(svc.get_task(&a, task.id).await, "TASK_NOT_FOUND");
    assert_code(svc.delete_task(&a, task.id).await, "TASK_NOT_FOUND");
    let rows = outbox(&pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_type, event_types::TASK_DELETED);
    assert_eq!(rows[0].event["data"]["task"]["title"], "bye");
    assert_eq!(rows[0].event["subject"], task.id.to_string());
}

#[sqlx::test]
async fn complete_task_events_and_idempotence(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let a = alice();
    let one_off = svc.create_task(&a, new_task("once")).await.unwrap();
    let recurring = svc
        .create_task(
            &a,
            NewTask {
                recurrence_rule: Some("FREQ=DAILY".into()),
                due_at: Some(Utc::now() + Duration::hours(1)),
                ..new_task("daily")
            },
        )
        .await
        .unwrap();
    let _ = woken(&waker);

    let done = svc.complete_task(&a, one_off.id).await.unwrap();
    assert!(done.completed);
    let completed_at = done.completed_at.unwrap();
    assert!(woken(&waker));
    let again = svc.complete_task(&a, one_off.id).await.unwrap();
    assert_eq!(again, done, "completing twice changes nothing");
    assert!(!woken(&waker));

    svc.complete_task(&a, recurring.id).await.unwrap();
    assert!(completed_at <= Utc::now() + Duration::seconds(1));

    let rows = outbox(&pool).await;
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r.topic.as_str(), r.event_type.as_str(), r.aggregate_id))
        .collect();
    assert_eq!(
        summary,
        [
            (topics::TASK_EVENTS, event_types::TASK_CREATED, one_off.id),
            (topics::TASK_EVENTS, event_types::TASK_CREATED, recurring.id),
            (topics::TASK_EVENTS, event_types::TASK_COMPLETED, one_off.id),
            (
                topics::TASK_EVENTS,
                event_types::TASK_COMPLETED,
                recurring.id
            ),
            (
                topics::TASK_RECURRENCE,
                event_types::TASK_COMPLETED,
                recurring.id
            ),
        ]
    );
    // The recurrence copy is the same event with its own id.
    assert_ne!(rows[3].id, rows[4].id);
    assert_eq!(rows[3].event["data"], rows[4].event["data"]);
    assert_eq!(
        rows[4].event["data"]["task"]["recurrence_rule"],
        "FREQ=DAILY"
    );
    assert_eq!(rows[4].event["id"], rows[4].id.to_string());
    assert_code(
        svc.complete_task(&bob(), recurring.id).await,
        "TASK_NOT_FOUND",
    );
}

#[sqlx::test]
async fn outbox_rows_follow_the_order_of_changes(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let t = svc.create_task(&a, new_task("t")).await.unwrap();
    let tag = svc
        .create_tag(
            &a,
            NewTag {
                name: "x".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    svc.update_task(
        &a,
        t.id,
        TaskPatch {
            title: Some("u".into()),
            ..TaskPatch::default()
        },
    )
    .await
    .unwrap();
    svc.add_tag_to_task(&a, t.id, tag.id).await.unwrap();
    svc.set_reminder(&a, t.id, ReminderSpec::At(Utc::now() + Duration::hours(1)))
        .await
        .unwrap();
    svc.complete_task(&a, t.id).await.unwrap();
    svc.delete_task(&a, t.id).await.unwrap();
    assert_eq!(
        outbox_types(&pool).await,
        events(&[
            event_types::TASK_CREATED,
            event_types::TASK_UPDATED,
            event_types::TASK_UPDATED,
            event_types::TASK_UPDATED,
            event_types::TASK_COMPLETED,
            event_types::TASK_DELETED,
        ])
    );
    let changed: Vec<_> = outbox(&pool).await.iter().map(Row::changed).collect();
    assert_eq!(
        changed[1..4],
        [vec!["title"], vec!["tags"], vec!["remind_at"]]
    );
}

#[sqlx::test]
async fn search_ranks_title_hits_first(pool: PgPool) {
    let (svc, _) = service(pool);
    let a = alice();
    let in_description = svc
        .create_task(
            &a,
            NewTask {
                description: Some("call the dentist".into()),
                ..new_task("errand")
            },
        )
        .await
        .unwrap();
    let in_title = svc
        .create_task(&a, new_task("Dentist appointment"))
        .await
        .unwrap();
    svc.create_task(&a, new_task("unrelated")).await.unwrap();
    svc.create_task(&bob(), new_task("dentist for bob"))
        .await
        .unwrap();

    let page = svc
        .search_tasks(&a, &SearchQuery::words("dentist"))
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let ids: Vec<_> = page.items.iter().map(|t| t.id).collect();
    assert_eq!(ids, [in_title.id, in_description.id]);

    for (words, total) in [
        // Prefixes match, every word must match, case does not matter.
        ("DENT", 2),
        ("call dent", 1),
        ("dentist zebra", 0),
        // Query syntax characters are just separators.
        ("dentist & | ! (", 2),
        ("?!", 0),
    ] {
        assert_eq!(search_total(&svc, &a, words).await, total, "{words}");
    }
    let paged = svc
        .search_tasks(
            &a,
            &SearchQuery {
                limit: 1,
                offset: 1,
                ..SearchQuery::words("dentist")
            },
        )
        .await
        .unwrap();
    assert_eq!((paged.total, paged.items.len()), (2, 1));
    assert_eq!(paged.items[0].id, in_description.id);
    assert_field(
        svc.search_tasks(&a, &SearchQuery::words("  ")).await,
        "query",
    );
    assert_field(
        svc.search_tasks(&a, &SearchQuery::words("q".repeat(201)))
            .await,
        "query",
    );
}

/// MCP parity: `search_tasks` narrows its matches by the original contract's priority,
/// category and tag filters, each alone and together, and pages what is left.
#[sqlx::test]
async fn search_narrows_by_priority_category_and_tags(pool: PgPool) {
    let (svc, _) = service(pool);
    let a = alice();
    let label = |name: &str| NewTag {
        name: name.into(),
        color: None,
    };
    let home = svc
        .create_category(
            &a,
            NewCategory {
                name: "Home".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let garden = svc.create_tag(&a, label("garden")).await.unwrap();
    let kitchen = svc.create_tag(&a, label("kitchen")).await.unwrap();
    let unused = svc.create_tag(&a, label("unused")).await.unwrap();
    let task = |title: &str, priority, category_id, tag_ids| NewTask {
        priority: Some(priority),
        category_id,
        tag_ids,
        ..new_task(title)
    };
    let lawn = svc
        .create_task(
            &a,
            task(
                "fix the lawn",
                Priority::Low,
                Some(home.id),
                vec![garden.id],
            ),
        )
        .await
        .unwrap();
    let sink = svc
        .create_task(
            &a,
            task(
                "fix the sink",
                Priority::Urgent,
                Some(home.id),
                vec![kitchen.id],
            ),
        )
        .await
        .unwrap();
    let bike = svc
        .create_task(&a, task("fix the bike", Priority::Urgent, None, vec![]))
        .await
        .unwrap();
    // A task the words do not match, though every filter would.
    svc.create_task(
        &a,
        task(
            "paint the fence",
            Priority::Low,
            Some(home.id),
            vec![garden.id],
        ),
    )
    .await
    .unwrap();

    let found = |search: SearchQuery| {
        let svc = svc.clone();
        let a = a.clone();
        async move {
            let page = svc.search_tasks(&a, &search).await.unwrap();
            let mut ids: Vec<Uuid> = page.items.iter().map(|t| t.id).collect();
            ids.sort();
            (page.total, ids)
        }
    };
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };
    let fix = || SearchQuery::words("fix");
    assert_eq!(
        found(fix()).await,
        (3, sorted(vec![lawn.id, sink.id, bike.id]))
    );
    let urgent = SearchQuery {
        priority: Some(Priority::Urgent),
        ..fix()
    };
    assert_eq!(
        found(urgent.clone()).await,
        (2, sorted(vec![sink.id, bike.id]))
    );
    let at_home = SearchQuery {
        category_id: Some(home.id),
        ..fix()
    };
    assert_eq!(
        found(at_home.clone()).await,
        (2, sorted(vec![lawn.id, sink.id]))
    );
    // Any of the tags; a tag no task carries adds nothing.
    let tagged = SearchQuery {
        tag_ids: vec![garden.id, kitchen.id, unused.id],
        ..fix()
    };
    assert_eq!(found(tagged).await, (2, sorted(vec![lawn.id, sink.id])));
    let only_unused = SearchQuery {
        tag_ids: vec![unused.id],
        ..fix()
    };
    assert_eq!(found(only_unused).await, (0, vec![]));
    // Filters combine with AND.
    let urgent_at_home = SearchQuery {
        category_id: Some(home.id),
        ..urgent.clone()
    };
    assert_eq!(found(urgent_at_home).await, (1, vec![sink.id]));
    // The total counts every filtered match; offset skips within them.
    let second = SearchQuery {
        limit: 1,
        offset: 1,
        ..at_home
    };
    let page = svc.search_tasks(&a, &second).await.unwrap();
    assert_eq!((page.total, page.items.len(), page.offset), (2, 1, 1));
    // Another user's category or tag, or one that never existed, matches nothing.
    svc.create_task(&bob(), new_task("fix the roof"))
        .await
        .unwrap();
    let bobs = svc.search_tasks(&bob(), &fix()).await.unwrap();
    assert_eq!(bobs.total, 1);
    for other in [
        SearchQuery {
            category_id: Some(home.id),
            ..SearchQuery::words("fix")
        },
        SearchQuery {
            tag_ids: vec![garden.id],
            ..SearchQuery::words("fix")
        },
    ] {
        let page = svc.search_tasks(&bob(), &other).await.unwrap();
        assert_eq!(page.total, 0);
    }
    let nowhere = SearchQuery {
        category_id: Some(Uuid::now_v7()),
        ..fix()
    };
    assert_eq!(found(nowhere).await, (0, vec![]));
}

#[sqlx::test]
async fn other_users_tasks_and_labels_are_invisible(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let (a, b) = (alice(), bob());
    let task = svc.create_task(&a, new_task("alice's")).await.unwrap();
    let tag = svc
        .create_tag(
            &a,
            NewTag {
                name: "mine".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let cat = svc
        .create_category(
            &a,
            NewCategory {
                name: "mine".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let bobs = svc.create_task(&b, new_task("bob's")).await.unwrap();
    let rows_before = outbox(&pool).await.len();

    assert_code(svc.get_task(&b, task.id).await, "TASK_NOT_FOUND");
    assert_code(
        svc.update_task(
            &b,
            task.id,
            TaskPatch {
                title: Some("x".into()),
                ..TaskPatch::default()
            },
        )
        .await,
        "TASK_NOT_FOUND",
    );
    assert_code(svc.delete_task(&b, task.id).await, "TASK_NOT_FOUND");
    assert_code(svc.complete_task(&b, task.id).await, "TASK_NOT_FOUND");
    assert_code(
        svc.set_reminder(
            &b,
            task.id,
            ReminderSpec::At(Utc::now() + Duration::hours(1)),
        )
        .await,
        "TASK_NOT_FOUND",
    );
    assert_code(
        svc.add_tag_to_task(&b, task.id, tag.id).await,
        "TASK_NOT_FOUND",
    );
    // Bob cannot attach Alice's tag to his own task, nor use her category.
    assert_code(svc.add_tag_to_task(&b, bobs.id, tag.id).await, "NOT_FOUND");
    assert_code(
        svc.remove_tag_from_task(&b, bobs.id, tag.id).await,
        "NOT_FOUND",
    );
    assert_code(
        svc.create_task(
            &b,
            NewTask {
                tag_ids: vec![tag.id],
                ..new_task("x")
            },
        )
        .await,
        "NOT_FOUND",
    );
    assert_code(
        svc.update_task(
            &b,
            bobs.id,
            TaskPatch {
                category_id: Some(Some(cat.id)),
                ..TaskPatch::default()
            },
        )
        .await,
        "NOT_FOUND",
    );
    assert_code(
        svc.update_tag(
            &b,
            tag.id,
            TagPatch {
                name: Some("x".into()),
                ..TagPatch::default()
            },
        )
        .await,
        "NOT_FOUND",
    );
    assert_code(
        svc.update_category(&b, cat.id, CategoryPatch::default())
            .await,
        "NOT_FOUND",
    );
    assert_code(svc.delete_tag(&b, tag.id).await, "NOT_FOUND");
    assert_code(svc.delete_category(&b, cat.id).await, "NOT_FOUND");

    let page = svc.list_tasks(&b, &TaskFilter::default()).await.unwrap();
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        [bobs.id]
    );
    assert!(svc.list_tags(&b).await.unwrap().is_empty());
    assert!(svc.list_categories(&b).await.unwrap().is_empty());
    assert_eq!(search_total(&svc, &b, "alice").await, 0);
    // Nothing of Alice's changed.
    assert_eq!(svc.get_task(&a, task.id).await.unwrap(), task);
    assert_eq!(outbox(&pool).await.len(), rows_before);
}

#[sqlx::test]
async fn task_not_found_suggests_recent_pending_tasks(pool: PgPool) {
    let (svc, _) = service(pool);
    let a = alice();
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            svc.create_task(&a, new_task(&format!("t{i}")))
                .await
                .unwrap(),
        );
    }
    svc.complete_task(&a, created[6].id).await.unwrap();
    let missing = Uuid::now_v7();
    match assert_code(svc.get_task(&a, missing).await, "TASK_NOT_FOUND") {
        ServiceError::TaskNotFound { id, suggestions } => {
            assert_eq!(id, missing);
            let titles: Vec<_> = suggestions.iter().map(|s| s.title.as_str()).collect();
            assert_eq!(titles, ["t5", "t4", "t3", "t2", "t1"]);
        }
        other => panic!("{other:?}"),
    }
    match svc.get_task(&bob(), missing).await {
        Err(ServiceError::TaskNotFound { suggestions, .. }) => assert!(suggestions.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[sqlx::test]
async fn categories_crud_conflicts_and_limit(pool: PgPool) {
    let (svc, _) = service(pool);
    let a = alice();
    let work = svc
        .create_category(
            &a,
            NewCategory {
                name: " Work ".into(),
                color: Some("#aabbcc".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (work.name.as_str(), work.color.as_deref(), work.task_count),
        ("Work", Some("#AABBCC"), 0)
    );
    assert_code(
        svc.create_category(
            &a,
            NewCategory {
                name: "WORK".into(),
                color: None,
            },
        )
        .await,
        "CONFLICT",
    );
    assert_field(
        svc.create_category(
            &a,
            NewCategory {
                name: "".into(),
                color: None,
            },
        )
        .await,
        "name",
    );
    assert_field(
        svc.create_category(
            &a,
            NewCategory {
                name: "x".repeat(51),
                color: None,
            },
        )
        .await,
        "name",
    );
    assert_field(
        svc.create_category(
            &a,
            NewCategory {
                name: "x".into(),
                color: Some("red".into()),
            },
        )
        .await,
        "color",
    );
    // The same name is fine for another user.
    svc.create_category(
        &bob(),
        NewCategory {
            name: "Work".into(),
            color: None,
        },
    )
    .await
    .unwrap();

    let home = svc
        .create_category(
            &a,
            NewCategory {
                name: "home".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    svc.create_task(
        &a,
        NewTask {
            category_id: Some(work.id),
            ..new_task("t")
        },
    )
    .await
    .unwrap();
    let list = svc.list_categories(&a).await.unwrap();
    let summary: Vec<_> = list
        .iter()
        .map(|c| (c.name.as_str(), c.task_count))
        .collect();
    assert_eq!(summary, [("home", 0), ("Work", 1)]);

    assert_code(
        svc.update_category(
            &a,
            home.id,
            CategoryPatch {
                name: Some("work".into()),
                color: None,
            },
        )
        .await,
        "CONFLICT",
    );
    let renamed = svc
        .update_category(
            &a,
            work.id,
            CategoryPatch {
                name: Some("Office".into()),
                color: Some(None),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.color.as_deref(),
            renamed.task_count
        ),
        ("Office", None, 1)
    );
    let recoloured = svc
        .update_category(
            &a,
            work.id,
            CategoryPatch {
                name: None,
                color: Some(Some("#000000".into())),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (recoloured.name.as_str(), recoloured.color.as_deref()),
        ("Office", Some("#000000"))
    );
    // Renaming to its own name in another case is not a conflict.
    svc.update_category(
        &a,
        work.id,
        CategoryPatch {
            name: Some("OFFICE".into()),
            color: None,
        },
    )
    .await
    .unwrap();

    for i in 2..50 {
        svc.create_category(
            &a,
            NewCategory {
                name: format!("c{i}"),
                color: None,
            },
        )
        .await
        .unwrap();
    }
    assert_code(
        svc.create_category(
            &a,
            NewCategory {
                name: "one more".into(),
                color: None,
            },
        )
        .await,
        "LIMIT_EXCEEDED",
    );
    svc.delete_category(&a, home.id).await.unwrap();
    svc.create_category(
        &a,
        NewCategory {
            name: "one more".into(),
            color: None,
        },
    )
    .await
    .unwrap();
}

#[sqlx::test]
async fn delete_category_keeps_tasks_and_emits_updates(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let a = alice();
    let cat = svc
        .create_category(
            &a,
            NewCategory {
                name: "c".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let t1 = svc
        .create_task(
            &a,
            NewTask {
                category_id: Some(cat.id),
                ..new_task("1")
            },
        )
        .await
        .unwrap();
    let t2 = svc
        .create_task(
            &a,
            NewTask {
                category_id: Some(cat.id),
                ..new_task("2")
            },
        )
        .await
        .unwrap();
    let other = svc.create_task(&a, new_task("3")).await.unwrap();
    clear_outbox(&pool).await;
    let _ = woken(&waker);

    svc.delete_category(&a, cat.id).await.unwrap();
    assert!(woken(&waker));
    for t in [&t1, &t2] {
        let now = svc.get_task(&a, t.id).await.unwrap();
        assert_eq!(now.category, None);
        assert!(now.updated_at > t.updated_at);
    }
    assert_eq!(svc.get_task(&a, other.id).await.unwrap(), other);
    let rows = outbox(&pool).await;
    let mut ids: Vec<_> = rows.iter().map(|r| r.aggregate_id).collect();
    ids.sort();
    let mut want = vec![t1.id, t2.id];
    want.sort();
    assert_eq!(ids, want);
    for r in &rows {
        assert_eq!(r.event_type, event_types::TASK_UPDATED);
        assert_eq!(r.changed(), ["category"]);
        assert_eq!(r.event["data"]["task"]["category"], Value::Null);
    }
    assert_code(svc.delete_category(&a, cat.id).await, "NOT_FOUND");

    // Deleting an unused category emits nothing.
    let unused = svc
        .create_category(
            &a,
            NewCategory {
                name: "u".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    clear_outbox(&pool).await;
    svc.delete_category(&a, unused.id).await.unwrap();
    assert!(outbox(&pool).await.is_empty());
    assert!(!woken(&waker));
}

#[sqlx::test]
async fn tags_crud_attach_detach_and_limit(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let t = svc
        .create_tag(
            &a,
            NewTag {
                name: "Urgent".into(),
                color: Some("#ff0000".into()),
            },
        )
        .await
        .unwrap();
    assert_code(
        svc.create_tag(
            &a,
            NewTag {
                name: "urgent".into(),
                color: None,
            },
        )
        .await,
        "CONFLICT",
    );
    assert_field(
        svc.create_tag(
            &a,
            NewTag {
                name: "x".repeat(31),
                color: None,
            },
        )
        .await,
        "name",
    );
    assert_field(
        svc.create_tag(
            &a,
            NewTag {
                name: "x".into(),
                color: Some("#12345".into()),
            },
        )
        .await,
        "color",
    );
    let renamed = svc
        .update_tag(
            &a,
            t.id,
            TagPatch {
                name: Some("asap".into()),
                color: Some(None),
            },
        )
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.color), ("asap", None));

    let task = svc.create_task(&a, new_task("t")).await.unwrap();
    clear_outbox(&pool).await;
    let with = svc.add_tag_to_task(&a, task.id, t.id).await.unwrap();
    assert_eq!(with.tags.iter().map(|g| g.id).collect::<Vec<_>>(), [t.id]);
    let again = svc.add_tag_to_task(&a, task.id, t.id).await.unwrap();
    assert_eq!(again, with, "adding a tag twice changes nothing");
    assert_eq!(svc.list_tags(&a).await.unwrap()[0].task_count, 1);
    let without = svc.remove_tag_from_task(&a, task.id, t.id).await.unwrap();
    assert!(without.tags.is_empty());
    let again = svc.remove_tag_from_task(&a, task.id, t.id).await.unwrap();
    assert_eq!(again, without);
    assert_code(
        svc.add_tag_to_task(&a, task.id, Uuid::now_v7()).await,
        "NOT_FOUND",
    );
    let rows = outbox(&pool).await;
    assert_eq!(rows.len(), 2, "one update per real change");
    assert!(rows.iter().all(|r| r.changed() == ["tags"]));

    // Ten tags per task at most.
    let mut ids = Vec::new();
    for i in 0..11 {
        ids.push(
            svc.create_tag(
                &a,
                NewTag {
                    name: format!("t{i}"),
                    color: None,
                },
            )
            .await
            .unwrap()
            .id,
        );
    }
    let full = svc
        .create_task(
            &a,
            NewTask {
                tag_ids: ids[..10].to_vec(),
                ..new_task("full")
            },
        )
        .await
        .unwrap();
    assert_eq!(full.tags.len(), 10);
    assert_code(
        svc.add_tag_to_task(&a, full.id, ids[10]).await,
        "LIMIT_EXCEEDED",
    );
    // Re-adding one it already has is still fine.
    svc.add_tag_to_task(&a, full.id, ids[0]).await.unwrap();
}

#[sqlx::test]
async fn delete_tag_removes_it_from_tasks(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let keep = svc
        .create_tag(
            &a,
            NewTag {
                name: "keep".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let drop = svc
        .create_tag(
            &a,
            NewTag {
                name: "drop".into(),
                color: None,
            },
        )
        .await
        .unwrap();
    let t1 = svc
        .create_task(
            &a,
            NewTask {
                tag_ids: vec![keep.id, drop.id],
                ..new_task("1")
            },
        )
        .await
        .unwrap();
    let t2 = svc
        .create_task(
            &a,
            NewTask {
                tag_ids: vec![keep.id],
                ..new_task("2")
            },
        )
        .await
        .unwrap();
    clear_outbox(&pool).await;
    svc.delete_tag(&a, drop.id).await.unwrap();
    let now1 = svc.get_task(&a, t1.id).await.unwrap();
    assert_eq!(
        now1.tags.iter().map(|g| g.id).collect::<Vec<_>>(),
        [keep.id]
    );
    assert_eq!(svc.get_task(&a, t2.id).await.unwrap(), t2);
    let rows = outbox(&pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].aggregate_id, t1.id);
    assert_eq!(rows[0].changed(), ["tags"]);
    assert_eq!(svc.list_tags(&a).await.unwrap().len(), 1);
}

#[sqlx::test]
async fn set_reminder_forms_and_errors(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let due = Utc::now() + Duration::days(1);
    let task = svc
        .create_task(
            &a,
            NewTask {
                due_at: Some(due),
                ..new_task("t")
            },
        )
        .await
        .unwrap();
    let no_due = svc.create_task(&a, new_task("no due")).await.unwrap();
    clear_outbox(&pool).await;

    let before = svc
        .set_reminder(&a, task.id, ReminderSpec::BeforeDue { minutes: 60 })
        .await
        .unwrap();
    assert_eq!(before.remind_at, Some(micros(due) - Duration::minutes(60)));
    // Same time again: no change, no event.
    svc.set_reminder(&a, task.id, ReminderSpec::BeforeDue { minutes: 60 })
        .await
        .unwrap();
    let at = Utc::now() + Duration::hours(3);
    let fixed = svc
        .set_reminder(&a, task.id, ReminderSpec::At(at))
        .await
        .unwrap();
    assert_eq!(fixed.remind_at, Some(micros(at)));
    // A fixed time needs no due date.
    let free = svc
        .set_reminder(&a, no_due.id, ReminderSpec::At(at))
        .await
        .unwrap();
    assert_eq!(free.remind_at, Some(micros(at)));

    assert_field(
        svc.set_reminder(&a, no_due.id, ReminderSpec::BeforeDue { minutes: 5 })
            .await,
        "remind_before_minutes",
    );
    assert_field(
        svc.set_reminder(&a, task.id, ReminderSpec::BeforeDue { minutes: 2 * 1440 })
            .await,
        "remind_before_minutes",
    );
    assert_field(
        svc.set_reminder(
            &a,
            task.id,
            ReminderSpec::At(Utc::now() - Duration::minutes(1)),
        )
        .await,
        "remind_at",
    );
    assert_field(
        svc.set_reminder(&a, task.id, ReminderSpec::At(due + Duration::minutes(1)))
            .await,
        "remind_at",
    );
    assert_code(
        svc.set_reminder(&a, Uuid::now_v7(), ReminderSpec::BeforeDue { minutes: 5 })
            .await,
        "TASK_NOT_FOUND",
    );

    let rows = outbox(&pool).await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.event_type == event_types::TASK_UPDATED && r.changed() == ["remind_at"])
    );
}

async fn recurring_fixture(svc: &TaskService) -> (Task, Uuid, Uuid) {
    recurring_fixture_named(svc, "").await
}

/// A completed weekly task of Alice's, with a new category and tag named after `suffix`.
async fn recurring_fixture_named(svc: &TaskService, suffix: &str) -> (Task, Uuid, Uuid) {
    let a = alice();
    let cat = svc
        .create_category(
            &a,
            NewCategory {
                name: format!("c{suffix}"),
                color: None,
            },
        )
        .await
        .unwrap();
    let tag = svc
        .create_tag(
            &a,
            NewTag {
                name: format!("g{suffix}"),
                color: None,
            },
        )
        .await
        .unwrap();
    let task = svc
        .create_task(
            &a,
            NewTask {
                description: Some("d".into()),
                priority: Some(Priority::High),
                category_id: Some(cat.id),
                tag_ids: vec![tag.id],
                due_at: Some(Utc::now() + Duration::hours(1)),
                recurrence_rule: Some("FREQ=WEEKLY;BYDAY=MO".into()),
                ..new_task("weekly")
            },
        )
        .await
        .unwrap();
    svc.complete_task(&a, task.id).await.unwrap();
    (task, cat.id, tag.id)
}

#[sqlx::test]
async fn next_occurrence_copies_the_task_once_per_key(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let (first, cat, tag) = recurring_fixture(&svc).await;
    clear_outbox(&pool).await;
    let _ = woken(&waker);
    let due = first.due_at.unwrap() + Duration::days(7);
    let next = NextOccurrence {
        due_at: due,
        remind_at: Some(due - Duration::minutes(30)),
        idempotency_key: "event-1".into(),
    };
    let (second, created) = svc
        .create_next_occurrence(first.id, next.clone())
        .await
        .unwrap();
    assert!(created);
    assert!(woken(&waker));
    assert_ne!(second.id, first.id);
    assert_eq!(
        (second.title.as_str(), second.description.as_str()),
        ("weekly", "d")
    );
    assert_eq!(second.priority, Priority::High);
    assert_eq!(second.category.as_ref().map(|c| c.id), Some(cat));
    assert_eq!(second.tags.iter().map(|g| g.id).collect::<Vec<_>>(), [tag]);
    assert_eq!(second.recurrence_rule, first.recurrence_rule);
    assert_eq!(second.due_at, Some(micros(due)));
    assert_eq!(second.remind_at, Some(micros(due - Duration::minutes(30))));
    assert_eq!(
        (second.parent_task_id, second.occurrence_index),
        (Some(first.id), 1)
    );
    assert!(!second.completed);

    // The same key again: the same task, nothing new.
    let (again, created) = svc.create_next_occurrence(first.id, next).await.unwrap();
    assert!(!created);
    assert_eq!(again, second);
    assert!(!woken(&waker));

    // The series goes on from the occurrence once it is done, keeping the root as parent.
    svc.complete_task(&alice(), second.id).await.unwrap();
    let (third, created) = svc
        .create_next_occurrence(
            second.id,
            NextOccurrence {
                due_at: due + Duration::days(7),
                remind_at: None,
                idempotency_key: "event-2".into(),
            },
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (third.parent_task_id, third.occurrence_index),
        (Some(first.id), 2)
    );

    let rows: Vec<Row> = outbox(&pool)
        .await
        .into_iter()
        .filter(|r| r.event_type == event_types::TASK_CREATED)
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.aggregate_id).collect::<Vec<_>>(),
        [second.id, third.id]
    );
    assert_eq!(rows[0].event["data"]["user_id"], "auth0|alice");
    // The occurrence belongs to the owner of the series.
    assert!(svc.get_task(&alice(), third.id).await.is_ok());
    assert_code(svc.get_task(&bob(), third.id).await, "TASK_NOT_FOUND");
}

#[sqlx::test]
async fn next_occurrence_errors(pool: PgPool) {
    let (svc, _) = service(pool);
    let (first, _, _) = recurring_fixture(&svc).await;
    let due = Utc::now() + Duration::days(7);
    let next = |key: &str| NextOccurrence {
        due_at: due,
        remind_at: None,
        idempotency_key: key.into(),
    };
    assert_code(
        svc.create_next_occurrence(Uuid::now_v7(), next("k1")).await,
        "TASK_NOT_FOUND",
    );
    assert_field(
        svc.create_next_occurrence(first.id, next(" ")).await,
        "idempotency_key",
    );
    let late = NextOccurrence {
        remind_at: Some(due + Duration::minutes(1)),
        ..next("k2")
    };
    assert_field(
        svc.create_next_occurrence(first.id, late).await,
        "remind_at",
    );
    let one_off = svc.create_task(&alice(), new_task("once")).await.unwrap();
    assert_field(
        svc.create_next_occurrence(one_off.id, next("k3")).await,
        "recurrence_rule",
    );
}

#[sqlx::test]
async fn concurrent_next_occurrences_with_one_key_create_one_task(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let (first, _, _) = recurring_fixture(&svc).await;
    let next = NextOccurrence {
        due_at: Utc::now() + Duration::days(7),
        remind_at: None,
        idempotency_key: "same".into(),
    };
    let calls = (0..4).map(|_| {
        let svc = svc.clone();
        let next = next.clone();
        tokio::spawn(async move { svc.create_next_occurrence(first.id, next).await })
    });
    let mut results = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        results.push(call.await.unwrap().unwrap());
    }
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert!(results.iter().all(|(t, _)| t.id == results[0].0.id));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE occurrence_key = 'same'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Issue 9: a next occurrence only follows a task that is really completed.
#[sqlx::test]
async fn next_occurrence_needs_a_completed_task(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let due = Utc::now() + Duration::hours(1);
    let pending = svc
        .create_task(
            &a,
            NewTask {
                due_at: Some(due),
                recurrence_rule: Some("FREQ=DAILY".into()),
                ..new_task("daily")
            },
        )
        .await
        .unwrap();
    clear_outbox(&pool).await;
    let next = |key: &str| NextOccurrence {
        due_at: due + Duration::days(1),
        remind_at: None,
        idempotency_key: key.into(),
    };
    match assert_code(
        svc.create_next_occurrence(pending.id, next("k1")).await,
        "TASK_NOT_COMPLETED",
    ) {
        ServiceError::NotCompleted { id } => assert_eq!(id, pending.id),
        other => panic!("{other:?}"),
    }

    // Completed, then reopened before the completion event was handled: still refused.
    svc.complete_task(&a, pending.id).await.unwrap();
    svc.update_task(
        &a,
        pending.id,
        TaskPatch {
            completed: Some(false),
            ..TaskPatch::default()
        },
    )
    .await
    .unwrap();
    clear_outbox(&pool).await;
    assert_code(
        svc.create_next_occurrence(pending.id, next("k2")).await,
        "TASK_NOT_COMPLETED",
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM tasks").await, 1);
    assert!(outbox(&pool).await.is_empty());

    // Completed again: now it goes.
    svc.complete_task(&a, pending.id).await.unwrap();
    let (_, created) = svc
        .create_next_occurrence(pending.id, next("k3"))
        .await
        .unwrap();
    assert!(created);
}

/// Issue 9: the same completion under another key (a replay with a new event id) answers the
/// occurrence created first instead of creating a second task for the same date.
#[sqlx::test]
async fn next_occurrence_once_per_occurrence_whatever_the_key(pool: PgPool) {
    let (svc, waker) = service(pool.clone());
    let (first, _, _) = recurring_fixture(&svc).await;
    clear_outbox(&pool).await;
    let _ = woken(&waker);
    let due = first.due_at.unwrap() + Duration::days(7);
    let next = |key: &str| NextOccurrence {
        due_at: due,
        remind_at: None,
        idempotency_key: key.into(),
    };
    let (second, created) = svc
        .create_next_occurrence(first.id, next("event-1"))
        .await
        .unwrap();
    assert!(created);
    assert!(woken(&waker));
    let (again, created) = svc
        .create_next_occurrence(first.id, next("event-1-replayed"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, second);
    assert!(!woken(&waker));

    // Reopened and completed again: a new completion event, still the same occurrence.
    let a = alice();
    let reopen = TaskPatch {
        completed: Some(false),
        ..TaskPatch::default()
    };
    svc.update_task(&a, first.id, reopen).await.unwrap();
    svc.complete_task(&a, first.id).await.unwrap();
    let (again, created) = svc
        .create_next_occurrence(first.id, next("event-2"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, second.id);

    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tasks WHERE parent_task_id IS NOT NULL"
        )
        .await,
        1
    );
    let created_events = outbox(&pool)
        .await
        .into_iter()
        .filter(|r| r.event_type == event_types::TASK_CREATED)
        .count();
    assert_eq!(created_events, 1);
}

#[sqlx::test]
async fn concurrent_next_occurrences_with_different_keys_create_one_task(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let (first, _, _) = recurring_fixture(&svc).await;
    let due = Utc::now() + Duration::days(7);
    let calls: Vec<_> = (0..6)
        .map(|n| {
            let svc = svc.clone();
            let next = NextOccurrence {
                due_at: due,
                remind_at: None,
                idempotency_key: format!("delivery-{n}"),
            };
            tokio::spawn(async move { svc.create_next_occurrence(first.id, next).await })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap().unwrap());
    }
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert!(results.iter().all(|(t, _)| t.id == results[0].0.id));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tasks WHERE parent_task_id IS NOT NULL"
        )
        .await,
        1
    );
}

/// The unique violation of a racing writer is handled inside the transaction: the call that
/// loses waits for the winner's commit and answers its task (`created: false`), not a 500.
#[sqlx::test]
async fn a_call_racing_for_the_same_occurrence_answers_the_winners_task(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let (first, _, _) = recurring_fixture(&svc).await;
    let due = micros(Utc::now() + Duration::days(7));
    // Another writer holds an uncommitted task at (first, 1): the call passes its look-ups,
    // then its insert waits on the unique index.
    let mut winner_tx = pool.begin().await.unwrap();
    let winner = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO tasks (id, user_id, title, due_at, recurrence_rule, parent_task_id, \
                            occurrence_index, occurrence_key) \
         VALUES ($1, 'auth0|alice', 'weekly', $2, 'FREQ=WEEKLY;BYDAY=MO', $3, 1, 'winner')",
    )
    .bind(winner)
    .bind(due)
    .bind(first.id)
    .execute(&mut *winner_tx)
    .await
    .unwrap();
    let call = tokio::spawn({
        let svc = svc.clone();
        async move {
            svc.create_next_occurrence(
                first.id,
                NextOccurrence {
                    due_at: due,
                    remind_at: None,
                    idempotency_key: "loser".into(),
                },
            )
            .await
        }
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting = count(
            &pool,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting > 0 || call.is_finished() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call neither waited nor finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    winner_tx.commit().await.unwrap();
    let (task, created) = call.await.unwrap().unwrap();
    assert!(
        !created,
        "a second task was created for the same occurrence"
    );
    assert_eq!(task.id, winner);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tasks WHERE parent_task_id IS NOT NULL"
        )
        .await,
        1
    );
}

/// The index itself (migration 0002): one task per (parent, index); deleting a series' first
/// task (ON DELETE SET NULL) never collides, and orphans go on as their own series.
#[sqlx::test]
async fn one_task_per_occurrence_is_a_database_rule(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let (first, _, _) = recurring_fixture(&svc).await;
    let due = Utc::now() + Duration::days(7);
    let next = |key: &str| NextOccurrence {
        due_at: due,
        remind_at: None,
        idempotency_key: key.into(),
    };
    let (second, _) = svc
        .create_next_occurrence(first.id, next("e1"))
        .await
        .unwrap();
    let duplicate = sqlx::query(
        "INSERT INTO tasks (id, user_id, title, parent_task_id, occurrence_index) \
         VALUES ($1, 'auth0|alice', 'dup', $2, 1)",
    )
    .bind(Uuid::now_v7())
    .bind(first.id)
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        crate::error::is_unique_violation(&duplicate, "tasks_parent_occurrence_index_key"),
        "{duplicate}"
    );

    // A second series at the same index, then both lose their first task.
    let (other_first, _, _) = recurring_fixture_named(&svc, "other").await;
    let (other_second, _) = svc
        .create_next_occurrence(other_first.id, next("e2"))
        .await
        .unwrap();
    svc.delete_task(&a, first.id).await.unwrap();
    svc.delete_task(&a, other_first.id).await.unwrap();
    let orphan = svc.get_task(&a, second.id).await.unwrap();
    assert_eq!((orphan.parent_task_id, orphan.occurrence_index), (None, 1));
    let other_orphan = svc.get_task(&a, other_second.id).await.unwrap();
    assert_eq!(other_orphan.parent_task_id, None);

    // A completed orphan starts its own series, guarded like the old one.
    svc.complete_task(&a, orphan.id).await.unwrap();
    let (third, created) = svc
        .create_next_occurrence(orphan.id, next("e3"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (third.parent_task_id, third.occurrence_index),
        (Some(orphan.id), 2)
    );
    let (again, created) = svc
        .create_next_occurrence(orphan.id, next("e3-again"))
        .await
        .unwrap();
    assert_eq!((again.id, created), (third.id, false));
}

/// Migration 0002 on a database the old behaviour left with duplicate occurrences: the index
/// is built, the first task of each pair stays in the series, nothing is deleted.
#[sqlx::test(migrations = false)]
async fn migration_0002_detaches_duplicates_it_finds(pool: PgPool) {
    sqlx::raw_sql(include_str!("../../migrations/0001_schema.sql"))
        .execute(&pool)
        .await
        .unwrap();
    let (root, dup_a, dup_b, other) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    sqlx::query("INSERT INTO users (id) VALUES ('u')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO tasks (id, user_id, title) VALUES ($1, 'u', 'r')")
        .bind(root)
        .execute(&pool)
        .await
        .unwrap();
    for (id, index, key, age_minutes) in [
        (dup_a, 1, "k1", 2),
        (dup_b, 1, "k2", 1),
        (other, 2, "k3", 0),
    ] {
        sqlx::query(
            "INSERT INTO tasks (id, user_id, title, parent_task_id, occurrence_index, \
                                occurrence_key, created_at) \
             VALUES ($1, 'u', $3, $2, $4, $3, now() - make_interval(mins => $5))",
        )
        .bind(id)
        .bind(root)
        .bind(key)
        .bind(index)
        .bind(age_minutes)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(include_str!(
        "../../migrations/0002_one_task_per_occurrence.sql"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let rows: Vec<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT id, parent_task_id FROM tasks ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let parent = |id: Uuid| rows.iter().find(|r| r.0 == id).unwrap().1;
    assert_eq!(rows.len(), 4);
    assert_eq!(
        parent(dup_a),
        Some(root),
        "the first one stays in the series"
    );
    assert_eq!(parent(dup_b), None);
    assert_eq!(parent(other), Some(root));
}

/// Issue 9: a NUL (which PostgreSQL refuses in `text` and `jsonb`) or another control
/// character in any text input is a validation error naming the field, and nothing is written.
#[sqlx::test]
async fn text_with_nul_never_reaches_the_database(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let task = svc.create_task(&a, new_task("t")).await.unwrap();
    let (first, cat, tag) = recurring_fixture(&svc).await;
    clear_outbox(&pool).await;
    let nul = "a\u{0}b".to_owned();

    let with_description = NewTask {
        description: Some(nul.clone()),
        ..new_task("t")
    };
    assert_field(svc.create_task(&a, with_description).await, "description");
    assert_field(svc.create_task(&a, new_task(&nul)).await, "title");
    let with_rule = NewTask {
        due_at: Some(Utc::now() + Duration::days(1)),
        recurrence_rule: Some(format!("FREQ=DAILY;{nul}")),
        ..new_task("t")
    };
    assert_field(svc.create_task(&a, with_rule).await, "recurrence_rule");
    for (patch, field) in [
        (
            TaskPatch {
                description: Some(nul.clone()),
                ..TaskPatch::default()
            },
            "description",
        ),
        (
            TaskPatch {
                description: Some("bell\u{7}".into()),
                ..TaskPatch::default()
            },
            "description",
        ),
        (
            TaskPatch {
                title: Some(nul.clone()),
                ..TaskPatch::default()
            },
            "title",
        ),
    ] {
        assert_field(svc.update_task(&a, task.id, patch).await, field);
    }
    let new_category = |name: &str, color: Option<&str>| NewCategory {
        name: name.into(),
        color: color.map(str::to_owned),
    };
    assert_field(
        svc.create_category(&a, new_category(&nul, None)).await,
        "name",
    );
    assert_field(
        svc.create_category(&a, new_category("x", Some("#12\u{0}456")))
            .await,
        "color",
    );
    let rename = CategoryPatch {
        name: Some(nul.clone()),
        color: None,
    };
    assert_field(svc.update_category(&a, cat, rename).await, "name");
    let new_tag = NewTag {
        name: nul.clone(),
        color: None,
    };
    assert_field(svc.create_tag(&a, new_tag).await, "name");
    let recolour = TagPatch {
        name: None,
        color: Some(Some("#\u{0}00000".into())),
    };
    assert_field(svc.update_tag(&a, tag, recolour).await, "color");
    assert_field(
        svc.search_tasks(&a, &SearchQuery::words(nul.as_str()))
            .await,
        "query",
    );
    let keyed = NextOccurrence {
        due_at: Utc::now() + Duration::days(7),
        remind_at: None,
        idempotency_key: nul.clone(),
    };
    assert_field(
        svc.create_next_occurrence(first.id, keyed).await,
        "idempotency_key",
    );

    assert!(outbox(&pool).await.is_empty());
    assert_eq!(count(&pool, "SELECT count(*) FROM tasks").await, 2);
    assert_eq!(count(&pool, "SELECT count(*) FROM categories").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM tags").await, 1);
    // Tabs and line breaks are text, not control characters.
    let multiline = svc
        .update_task(
            &a,
            task.id,
            TaskPatch {
                description: Some("line 1\r\n\tline 2".into()),
                ..TaskPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(multiline.description, "line 1\r\n\tline 2");
}

/// Issue 9: every timestamp a client gives lies between 1970 and 9999, on every entry point.
#[sqlx::test]
async fn timestamps_outside_1970_to_9999_are_refused_everywhere(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let year_0 = chrono::DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let year_10000 = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59-01:00")
        .unwrap()
        .with_timezone(&Utc);
    let task = svc.create_task(&a, new_task("t")).await.unwrap();
    let (first, _, _) = recurring_fixture(&svc).await;
    clear_outbox(&pool).await;
    for bad in [year_0, year_10000] {
        let due = NewTask {
            due_at: Some(bad),
            ..new_task("t")
        };
        assert_field(svc.create_task(&a, due).await, "due_at");
        let remind = NewTask {
            remind_at: Some(bad),
            ..new_task("t")
        };
        assert_field(svc.create_task(&a, remind).await, "remind_at");
        let patch = TaskPatch {
            due_at: Some(Some(bad)),
            ..TaskPatch::default()
        };
        assert_field(svc.update_task(&a, task.id, patch).await, "due_at");
        let patch = TaskPatch {
            remind_at: Some(Some(bad)),
            ..TaskPatch::default()
        };
        assert_field(svc.update_task(&a, task.id, patch).await, "remind_at");
        assert_field(
            svc.set_reminder(&a, task.id, ReminderSpec::At(bad)).await,
            "remind_at",
        );
        let filter = TaskFilter {
            due_before: Some(bad),
            ..TaskFilter::default()
        };
        assert_field(svc.list_tasks(&a, &filter).await, "due_before");
        let filter = TaskFilter {
            due_after: Some(bad),
            ..TaskFilter::default()
        };
        assert_field(svc.list_tasks(&a, &filter).await, "due_after");
        let next = NextOccurrence {
            due_at: bad,
            remind_at: None,
            idempotency_key: "k".into(),
        };
        assert_field(svc.create_next_occurrence(first.id, next).await, "due_at");
        let next = NextOccurrence {
            due_at: Utc::now() + Duration::days(7),
            remind_at: Some(year_0),
            idempotency_key: "k".into(),
        };
        assert_field(
            svc.create_next_occurrence(first.id, next).await,
            "remind_at",
        );
    }
    assert!(outbox(&pool).await.is_empty());
    // The edges themselves are fine.
    let edge = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .unwrap()
        .with_timezone(&Utc);
    let far = NewTask {
        due_at: Some(edge),
        ..new_task("far")
    };
    assert_eq!(svc.create_task(&a, far).await.unwrap().due_at, Some(edge));
    let filter = TaskFilter {
        due_after: Some(chrono::DateTime::UNIX_EPOCH),
        ..TaskFilter::default()
    };
    assert_eq!(svc.list_tasks(&a, &filter).await.unwrap().total, 2);
}

/// Issue 9: REST and MCP share this rule — a recurring task needs a due date, on create and on
/// every update that touches the rule or the due date.
#[sqlx::test]
async fn a_recurring_task_needs_a_due_date(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    let undated = NewTask {
        recurrence_rule: Some("FREQ=DAILY".into()),
        ..new_task("daily")
    };
    assert_field(svc.create_task(&a, undated).await, "due_at");

    let due = Utc::now() + Duration::days(1);
    let recurring = svc
        .create_task(
            &a,
            NewTask {
                due_at: Some(due),
                recurrence_rule: Some("FREQ=DAILY".into()),
                ..new_task("daily")
            },
        )
        .await
        .unwrap();
    let clear_due = TaskPatch {
        due_at: Some(None),
        ..TaskPatch::default()
    };
    assert_field(svc.update_task(&a, recurring.id, clear_due).await, "due_at");
    let plain = svc.create_task(&a, new_task("plain")).await.unwrap();
    let set_rule = TaskPatch {
        recurrence_rule: Some(Some("FREQ=WEEKLY".into())),
        ..TaskPatch::default()
    };
    assert_field(
        svc.update_task(&a, plain.id, set_rule.clone()).await,
        "due_at",
    );
    // Both in one patch is fine, either way round.
    let with_due = TaskPatch {
        due_at: Some(Some(due)),
        ..set_rule
    };
    let now_recurring = svc.update_task(&a, plain.id, with_due).await.unwrap();
    assert_eq!(
        now_recurring.recurrence_rule.as_deref(),
        Some("FREQ=WEEKLY")
    );
    let stop = TaskPatch {
        due_at: Some(None),
        recurrence_rule: Some(None),
        ..TaskPatch::default()
    };
    let stopped = svc.update_task(&a, recurring.id, stop).await.unwrap();
    assert_eq!((stopped.due_at, stopped.recurrence_rule), (None, None));

    // A row from before the rule stays editable and completable.
    sqlx::query("UPDATE tasks SET recurrence_rule = 'FREQ=DAILY', due_at = NULL WHERE id = $1")
        .bind(recurring.id)
        .execute(&pool)
        .await
        .unwrap();
    let renamed = TaskPatch {
        title: Some("renamed".into()),
        ..TaskPatch::default()
    };
    assert_eq!(
        svc.update_task(&a, recurring.id, renamed)
            .await
            .unwrap()
            .title,
        "renamed"
    );
    assert!(svc.complete_task(&a, recurring.id).await.unwrap().completed);
}

#[sqlx::test]
async fn task_snapshot_and_users(pool: PgPool) {
    let (svc, _) = service(pool.clone());
    let a = alice();
    svc.upsert_user(&a).await.unwrap();
    let task = svc.create_task(&a, new_task("t")).await.unwrap();
    // A later token without the e-mail claim keeps the stored e-mail.
    svc.upsert_user(&AuthUser {
        name: Some("Alice B.".into()),
        ..AuthUser::new(a.id.clone())
    })
    .await
    .unwrap();
    let (snap, email, name) = svc.task_snapshot(task.id).await.unwrap().unwrap();
    assert_eq!(snap, snapshot(&a.id, &task));
    assert_eq!(email.as_deref(), Some("alice@example.com"));
    assert_eq!(name.as_deref(), Some("Alice B."));
    assert!(svc.task_snapshot(Uuid::now_v7()).await.unwrap().is_none());

    // A user known only from a write has no contact details.
    let task = svc.create_task(&bob(), new_task("b")).await.unwrap();
    let (_, email, name) = svc.task_snapshot(task.id).await.unwrap().unwrap();
    assert_eq!((email, name), (None, None));
    let seen: (chrono::DateTime<Utc>, chrono::DateTime<Utc>) =
        sqlx::query_as("SELECT first_seen_at, last_seen_at FROM users WHERE id = 'bob'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(seen.0 <= seen.1);
}
