//! One original row → our values, with a [`Finding`] for everything that could not be carried
//! as it was. Pure: no database, so every rule is unit-tested here.
//!
//! The rules are our own validation (`validation`, the RRULE subset of `recurrence`), applied
//! value by value: a value that fails is left out or mended and reported, and the rest of the
//! row is carried. Free text is mended (control characters become spaces, over-long text is
//! cut) rather than dropped, since a task without its title is worse than one with a mended
//! title; a due date or rule we cannot represent is dropped, since guessing one would schedule
//! something the user never asked for.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::report::{Finding, Outcome};
use super::source::{SourceLabel, SourceTask};
use crate::domain::{LegacyKind, Priority};
use crate::store::tasks::TaskFields;
use crate::validation::{self, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS};

/// Tags one task may carry (the same limit as the API's).
const MAX_TAGS: usize = crate::error::MAX_TAGS_PER_TASK;
/// What a task's title becomes when the original has none that can be mended.
const UNTITLED: &str = "(untitled)";
/// Longest original value quoted back in a finding.
const MAX_QUOTED_CHARS: usize = 120;
/// Changes whenever a rule here changes what a row becomes, so that the next run re-examines
/// every row instead of trusting the digests of the previous version.
const RULES_VERSION: &str = "import-rules-1";
/// Namespace of the row digests (UUID v5, i.e. SHA-1): a fixed random UUID.
const DIGEST_NAMESPACE: Uuid = Uuid::from_u128(0x3d6c_1f0a_8e57_4b92_a1c4_7f25_09be_6d13);

/// What every conversion of one run shares.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rules {
    /// The run's start: the present for reminders, and the latest time a row may claim.
    pub(super) now: DateTime<Utc>,
    /// How long before the due time the original reminded (`None`: carry no reminders).
    pub(super) reminder_lead: Option<TimeDelta>,
}

/// How a label a task points at resolves, for that task's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LabelRef {
    /// Carried: our id.
    Carried(Uuid),
    /// The label exists in the original but is not here (reported on its own line).
    NotCarried,
    /// The label belongs to another user in the original.
    OtherUser,
    /// No such label in the original (a link the original's constraints did not stop).
    Missing,
}

/// A user id of the original, as our `users.id` (the JWT `sub`) must be: 1–255 characters, no
/// control characters. Not trimmed: the id must equal the token's subject exactly.
pub(super) fn user_id(raw: Option<&str>) -> Result<&str, Finding> {
    match raw {
        Some(id) if (1..=255).contains(&id.chars().count()) && !validation::has_control(id) => {
            Ok(id)
        }
        other => Err(Finding::new(
            "user_id",
            other.map(quote),
            Outcome::Skipped,
            "not a usable user id (1-255 characters, no control characters); the row's owner \
             could never sign in here",
        )),
    }
}

/// A label's values as we store them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LabelPlan {
    pub(super) name: String,
    pub(super) color: Option<String>,
    pub(super) created_at: DateTime<Utc>,
}

/// Converts a category or tag; `None` when its name cannot be carried.
pub(super) fn label(
    kind: LegacyKind,
    row: &SourceLabel,
    rules: &Rules,
    findings: &mut Vec<Finding>,
) -> Option<LabelPlan> {
    let check = |name: &str| match kind {
        LegacyKind::Tag => validation::tag_name(name),
        LegacyKind::Category | LegacyKind::Task => validation::category_name(name),
    };
    let raw = row.name.as_deref().unwrap_or_default();
    let name = match check(raw) {
        Ok(name) => name,
        Err(first) => match check(&one_line(raw)) {
            Ok(name) => {
                findings.push(Finding::new(
                    "name",
                    None,
                    Outcome::Changed,
                    "control characters replaced by spaces",
                ));
                name
            }
            Err(_) => {
                findings.push(Finding::new(
                    "name",
                    row.name.as_deref().map(quote),
                    Outcome::Skipped,
                    format!("{first}; the {} is not carried", kind.as_str()),
                ));
                return None;
            }
        },
    };
    let color = match validation::optional_color(row.color.as_deref()) {
        Ok(color) => color,
        Err(e) => {
            findings.push(Finding::new(
                "color",
                row.color.as_deref().map(quote),
                Outcome::NotCarried,
                e.to_string(),
            ));
            None
        }
    };
    Some(LabelPlan {
        name,
        color,
        created_at: created_at(row.created_at, rules, findings),
    })
}

/// A task's values as we store them, its original times and its tags.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TaskPlan {
    pub(super) fields: TaskFields,
    pub(super) created_at: DateTime<Utc>,
    /// The original's last change, at most `now`; what a new row's `updated_at` starts from.
    pub(super) updated_at: DateTime<Utc>,
    pub(super) tag_ids: Vec<Uuid>,
}

/// Converts a task; `label` resolves a category or tag id for the task's owner.
pub(super) fn task(
    row: &SourceTask,
    label: impl Fn(LegacyKind, i64) -> LabelRef,
    rules: &Rules,
    findings: &mut Vec<Finding>,
) -> TaskPlan {
    let created_at = created_at(row.created_at, rules, findings);
    // The last change lies between the creation and now (clocks of the old hosts may be off).
    let updated_at = row
        .updated_at
        .unwrap_or(created_at)
        .clamp(created_at, rules.now);
    let completed = row.completed.unwrap_or(false);
    if row.completed.is_none() {
        findings.push(Finding::new(
            "completed",
            None,
            Outcome::Changed,
            "empty; carried as not completed",
        ));
    }
    let due_at = due_at(row.due_date.as_deref(), findings);
    let recurrence_rule = recurrence_rule(row.recurrence_rule.as_deref(), due_at, findings);
    let category_id = row.category_id.and_then(|id| {
        link(
            LegacyKind::Category,
            id,
            label(LegacyKind::Category, id),
            "category_id",
            "the task is carried without a category",
            findings,
        )
    });
    let tag_ids = tags(&row.tag_ids, |id| label(LegacyKind::Tag, id), findings);
    // The original kept no reminder time: its poller mailed every pending task whose due time
    // came within the lead and whose `reminder_sent` was still false. That reminder is carried
    // for tasks still due ahead, never earlier than the task itself (notification ignores a
    // reminder older than its task).
    let remind_at = match (rules.reminder_lead, due_at) {
        (Some(lead), Some(due))
            if !completed && !row.reminder_sent.unwrap_or(false) && due > rules.now =>
        {
            due.checked_sub_signed(lead)
                .map(|at| at.max(created_at))
                .filter(|at| *at <= due)
        }
        _ => None,
    };
    TaskPlan {
        fields: TaskFields {
            title: title(row.title.as_deref(), findings),
            description: description(row.description.as_deref(), findings),
            // The original kept no completion time; its last change is the best estimate.
            completed_at: completed.then_some(updated_at),
            priority: priority(row.priority.as_deref(), findings),
            category_id,
            due_at,
            remind_at,
            recurrence_rule,
        },
        created_at,
        updated_at,
        tag_ids,
    }
}

/// The digest a map entry keeps of a row: changes whenever the row, or what it resolves to,
/// does. `parts` are the values that decide what the row becomes.
pub(super) fn digest<'a>(kind: LegacyKind, parts: impl IntoIterator<Item = &'a str>) -> Uuid {
    // Length-prefixed, so ("ab", "c") and ("a", "bc") differ; no serde, so it cannot fail
    // and does not depend on a serializer's output staying the same across versions.
    let mut input = format!("{RULES_VERSION}\u{0}{}", kind.as_str());
    for part in parts {
        input.push_str(&format!("\u{0}{}:{part}", part.len()));
    }
    Uuid::new_v5(&DIGEST_NAMESPACE, input.as_bytes())
}

/// An optional value as a digest part.
pub(super) fn part<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "\u{1}".to_owned(), |v| v.to_string())
}

/// A time as a digest part (RFC 3339, microseconds, as PostgreSQL keeps them).
pub(super) fn time_part(at: Option<DateTime<Utc>>) -> String {
    part(at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
}

fn created_at(
    at: Option<DateTime<Utc>>,
    rules: &Rules,
    findings: &mut Vec<Finding>,
) -> DateTime<Utc> {
    match at {
        Some(at) => crate::service::micros(at.min(rules.now)),
        None => {
            findings.push(Finding::new(
                "created_at",
                None,
                Outcome::Changed,
                "empty or not a finite time; set to the time of the import",
            ));
            rules.now
        }
    }
}

fn title(raw: Option<&str>, findings: &mut Vec<Finding>) -> String {
    let raw = raw.unwrap_or_default();
    if let Ok(title) = validation::title(raw) {
        return title;
    }
    let mended: String = truncate(&one_line(raw), MAX_TITLE_CHARS).trim().to_owned();
    let (title, reason) = if mended.is_empty() {
        (
            UNTITLED.to_owned(),
            format!("empty; carried as \"{UNTITLED}\""),
        )
    } else {
        (
            mended,
            format!(
                "control characters replaced by spaces, cut to {MAX_TITLE_CHARS} characters \
                 where longer"
            ),
        )
    };
    findings.push(Finding::new("title", None, Outcome::Changed, reason));
    title
}

fn description(raw: Option<&str>, findings: &mut Vec<Finding>) -> String {
    let raw = raw.unwrap_or_default();
    if let Ok(description) = validation::description(raw) {
        return description;
    }
    let chars = raw.chars().count();
    let mended: String = raw
        .chars()
        .map(|c| if allowed_in_text(c) { c } else { ' ' })
        .collect();
    let mended = truncate(mended.trim(), MAX_DESCRIPTION_CHARS)
        .trim()
        .to_owned();
    let reason = if chars > MAX_DESCRIPTION_CHARS {
        format!("{chars} characters, cut to the first {MAX_DESCRIPTION_CHARS}")
    } else {
        "control characters other than tab and line breaks replaced by spaces".to_owned()
    };
    findings.push(Finding::new("description", None, Outcome::Changed, reason));
    mended
}

fn priority(raw: Option<&str>, findings: &mut Vec<Finding>) -> Priority {
    match raw.map(|p| p.trim().parse::<Priority>()) {
        Some(Ok(priority)) => priority,
        _ => {
            findings.push(Finding::new(
                "priority",
                raw.map(quote),
                Outcome::Changed,
                "not low, medium, high or urgent; carried as medium",
            ));
            Priority::Medium
        }
    }
}

/// Reads a due date as the original stored it: a time without zone (UTC), also when the
/// column is text; with an offset, or a date alone (midnight UTC).
pub(super) fn parse_due(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Some(at.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

fn due_at(raw: Option<&str>, findings: &mut Vec<Finding>) -> Option<DateTime<Utc>> {
    let raw = raw?;
    let reason = match parse_due(raw) {
        Some(at) => match validation::timestamp("due_at", at) {
            Ok(at) => return Some(crate::service::micros(at)),
            Err(e) => e.to_string(),
        },
        None => "not a date and time".to_owned(),
    };
    findings.push(Finding::new(
        "due_date",
        Some(quote(raw)),
        Outcome::NotCarried,
        format!("{reason}; the task is carried without a due date"),
    ));
    None
}

fn recurrence_rule(
    raw: Option<&str>,
    due_at: Option<DateTime<Utc>>,
    findings: &mut Vec<Finding>,
) -> Option<String> {
    let reason = match validation::recurrence_rule(raw) {
        Ok(None) => return None,
        Ok(Some(rule)) => match validation::recurrence_needs_due(Some(&rule), due_at) {
            Ok(()) => return Some(rule),
            Err(_) => "a recurring task needs a due date (its series starts there) and this one \
                       has none that could be carried"
                .to_owned(),
        },
        Err(e) => e.to_string(),
    };
    findings.push(Finding::new(
        "recurrence_rule",
        raw.map(quote),
        Outcome::NotCarried,
        format!("{reason}; the task is carried without recurrence"),
    ));
    None
}

/// The tags of a task: duplicates dropped, at most [`MAX_TAGS`], each reported when it cannot
/// be carried.
fn tags(
    legacy_ids: &[i64],
    label: impl Fn(i64) -> LabelRef,
    findings: &mut Vec<Finding>,
) -> Vec<Uuid> {
    let mut carried: Vec<Uuid> = Vec::new();
    let mut seen: Vec<i64> = Vec::new();
    for &id in legacy_ids {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let Some(tag) = link(
            LegacyKind::Tag,
            id,
            label(id),
            "tag_ids",
            "the task is carried without it",
            findings,
        ) else {
            continue;
        };
        if carried.contains(&tag) {
            // Two original tags folded into one of ours (names differing only in case).
            continue;
        }
        if carried.len() == MAX_TAGS {
            findings.push(Finding::new(
                "tag_ids",
                Some(id.to_string()),
                Outcome::NotCarried,
                format!("a task carries at most {MAX_TAGS} tags; the task is carried without it"),
            ));
            continue;
        }
        carried.push(tag);
    }
    carried
}

/// A category or tag a task points at, or a finding on `field` saying why it is left out.
fn link(
    kind: LegacyKind,
    id: i64,
    found: LabelRef,
    field: &'static str,
    consequence: &str,
    findings: &mut Vec<Finding>,
) -> Option<Uuid> {
    let kind = kind.as_str();
    let reason = match found {
        LabelRef::Carried(id) => return Some(id),
        LabelRef::NotCarried => format!("{kind} {id} was not carried (see its own line)"),
        LabelRef::OtherUser => format!("{kind} {id} belongs to another user"),
        LabelRef::Missing => format!("{kind} {id} does not exist in the original"),
    };
    findings.push(Finding::new(
        field,
        Some(id.to_string()),
        Outcome::NotCarried,
        format!("{reason}; {consequence}"),
    ));
    None
}

/// `text` on one line: every control character a space, trimmed.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What free text may hold (as `validation` rules it): all but the C0 controls other than tab
/// and line breaks.
fn allowed_in_text(c: char) -> bool {
    c >= ' ' || matches!(c, '\t' | '\n' | '\r')
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// An original value as quoted in a finding: one line, at most [`MAX_QUOTED_CHARS`].
fn quote(value: &str) -> String {
    let line: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() > MAX_QUOTED_CHARS {
        format!("{}…", truncate(&line, MAX_QUOTED_CHARS))
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn rules() -> Rules {
        Rules {
            now: Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap(),
            reminder_lead: Some(TimeDelta::minutes(60)),
        }
    }

    fn row() -> SourceTask {
        SourceTask {
            id: 1,
            user_id: Some("u1".into()),
            title: Some("Pay rent".into()),
            description: None,
            completed: Some(false),
            priority: Some("high".into()),
            due_date: Some("2030-01-03 09:00:00".into()),
            category_id: None,
            recurrence_rule: None,
            reminder_sent: Some(false),
            created_at: Some(Utc.with_ymd_and_hms(2029, 12, 1, 8, 0, 0).unwrap()),
            updated_at: Some(Utc.with_ymd_and_hms(2029, 12, 2, 8, 0, 0).unwrap()),
            tag_ids: Vec::new(),
        }
    }

    fn convert(row: &SourceTask) -> (TaskPlan, Vec<Finding>) {
        let mut findings = Vec::new();
        let plan = task(row, |_, _| LabelRef::Missing, &rules(), &mut findings);
        (plan, findings)
    }

    fn fields(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_clean_row_is_carried_whole_with_its_reminder() {
        let (plan, findings) = convert(&row());
        assert!(findings.is_empty(), "{findings:?}");
        let due = Utc.with_ymd_and_hms(2030, 1, 3, 9, 0, 0).unwrap();
        assert_eq!(plan.fields.title, "Pay rent");
        assert_eq!(plan.fields.priority, Priority::High);
        assert_eq!(plan.fields.due_at, Some(due));
        assert_eq!(
            plan.fields.remind_at,
            Some(due - TimeDelta::minutes(60)),
            "the original's reminder, one lead before the due time"
        );
        assert_eq!(plan.fields.completed_at, None);
    }

    #[test]
    fn reminders_only_for_pending_unsent_tasks_still_due() {
        let sent = SourceTask {
            reminder_sent: Some(true),
            ..row()
        };
        assert_eq!(convert(&sent).0.fields.remind_at, None);
        let done = SourceTask {
            completed: Some(true),
            ..row()
        };
        let (plan, _) = convert(&done);
        assert_eq!(plan.fields.remind_at, None);
        assert_eq!(plan.fields.completed_at, Some(plan.updated_at));
        let past = SourceTask {
            due_date: Some("2029-12-31 09:00:00".into()),
            ..row()
        };
        assert_eq!(convert(&past).0.fields.remind_at, None);
        // Due within the lead: the reminder falls due at once, but never before the task.
        let soon = SourceTask {
            due_date: Some("2030-01-01 12:30:00".into()),
            created_at: Some(Utc.with_ymd_and_hms(2030, 1, 1, 11, 45, 0).unwrap()),
            ..row()
        };
        assert_eq!(
            convert(&soon).0.fields.remind_at,
            Some(Utc.with_ymd_and_hms(2030, 1, 1, 11, 45, 0).unwrap())
        );
        let mut none = rules();
        none.reminder_lead = None;
        let mut findings = Vec::new();
        let plan = task(&row(), |_, _| LabelRef::Missing, &none, &mut findings);
        assert_eq!(plan.fields.remind_at, None);
    }

    #[test]
    fn rules_outside_the_subset_are_dropped_and_reported() {
        let hourly = SourceTask {
            recurrence_rule: Some("FREQ=HOURLY".into()),
            ..row()
        };
        let (plan, findings) = convert(&hourly);
        assert_eq!(plan.fields.recurrence_rule, None);
        assert_eq!(fields(&findings), ["recurrence_rule"]);
        assert_eq!(findings[0].outcome, Outcome::NotCarried);
        assert_eq!(findings[0].value.as_deref(), Some("FREQ=HOURLY"));
        let weekly = SourceTask {
            recurrence_rule: Some("freq=weekly;byday=fr,mo".into()),
            ..row()
        };
        assert_eq!(
            convert(&weekly).0.fields.recurrence_rule.as_deref(),
            Some("FREQ=WEEKLY;BYDAY=MO,FR")
        );
        let no_due = SourceTask {
            recurrence_rule: Some("FREQ=DAILY".into()),
            due_date: None,
            ..row()
        };
        let (plan, findings) = convert(&no_due);
        assert_eq!(plan.fields.recurrence_rule, None);
        assert!(
            findings[0].reason.contains("needs a due date"),
            "{findings:?}"
        );
    }

    #[test]
    fn due_dates_in_the_forms_postgresql_writes() {
        let at = |s: &str| parse_due(s).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2030-01-03 09:00:00").as_deref(),
            Some("2030-01-03T09:00:00+00:00")
        );
        assert_eq!(
            at("2030-01-03 09:00:00.25").as_deref(),
            Some("2030-01-03T09:00:00.250+00:00")
        );
        assert_eq!(
            at("2030-01-03 10:00:00+01").as_deref(),
            Some("2030-01-03T09:00:00+00:00")
        );
        assert_eq!(
            at("2030-01-03T09:00:00Z").as_deref(),
            Some("2030-01-03T09:00:00+00:00")
        );
        assert_eq!(
            at("2030-01-03").as_deref(),
            Some("2030-01-03T00:00:00+00:00")
        );
        for bad in [
            "infinity",
            "-infinity",
            "next tuesday",
            "0044-03-15 00:00:00 BC",
            "",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        let infinite = SourceTask {
            due_date: Some("infinity".into()),
            recurrence_rule: Some("FREQ=DAILY".into()),
            ..row()
        };
        let (plan, findings) = convert(&infinite);
        assert_eq!((plan.fields.due_at, plan.fields.remind_at), (None, None));
        assert_eq!(fields(&findings), ["due_date", "recurrence_rule"]);
        let far = SourceTask {
            due_date: Some("12000-01-01 00:00:00".into()),
            ..row()
        };
        assert_eq!(fields(&convert(&far).1), ["due_date"]);
    }

    #[test]
    fn text_is_mended_not_dropped() {
        let odd = SourceTask {
            title: Some("Call\u{7}mom\n".into()),
            description: Some(format!("a\u{1}b{}", "x".repeat(MAX_DESCRIPTION_CHARS))),
            priority: Some("asap".into()),
            completed: None,
            ..row()
        };
        let (plan, findings) = convert(&odd);
        assert_eq!(plan.fields.title, "Call mom");
        assert_eq!(
            plan.fields.description.chars().count(),
            MAX_DESCRIPTION_CHARS
        );
        assert!(plan.fields.description.starts_with("a b"));
        assert_eq!(plan.fields.priority, Priority::Medium);
        assert_eq!(
            fields(&findings),
            ["completed", "title", "description", "priority"]
        );
        assert!(findings.iter().all(|f| f.outcome == Outcome::Changed));
        let empty = SourceTask {
            title: Some("  ".into()),
            ..row()
        };
        assert_eq!(convert(&empty).0.fields.title, UNTITLED);
    }

    #[test]
    fn links_resolve_per_owner_and_stop_at_ten_tags() {
        let ours: Vec<Uuid> = (1..=12).map(Uuid::from_u128).collect();
        let linked = SourceTask {
            category_id: Some(5),
            tag_ids: vec![1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
            ..row()
        };
        let mut findings = Vec::new();
        let plan = task(
            &linked,
            |kind, id| match (kind, id) {
                (LegacyKind::Category, _) => LabelRef::OtherUser,
                (_, 13) => LabelRef::Missing,
                (_, 14) => LabelRef::NotCarried,
                (_, n) => LabelRef::Carried(ours[usize::try_from(n - 1).unwrap()]),
            },
            &rules(),
            &mut findings,
        );
        assert_eq!(plan.fields.category_id, None);
        assert_eq!(plan.tag_ids, ours[..10]);
        let values: Vec<_> = findings
            .iter()
            .map(|f| (f.field, f.value.as_deref().unwrap()))
            .collect();
        assert_eq!(
            values,
            [
                ("category_id", "5"),
                ("tag_ids", "11"),
                ("tag_ids", "12"),
                ("tag_ids", "13"),
                ("tag_ids", "14"),
            ]
        );
    }

    #[test]
    fn labels_and_users() {
        let mut findings = Vec::new();
        let row = SourceLabel {
            id: 1,
            user_id: Some("u1".into()),
            name: Some("Work\t".into()),
            color: Some("#ff0000".into()),
            created_at: None,
        };
        let plan = label(LegacyKind::Tag, &row, &rules(), &mut findings).unwrap();
        assert_eq!(
            (plan.name.as_str(), plan.color.as_deref()),
            ("Work", Some("#FF0000"))
        );
        assert_eq!(plan.created_at, rules().now);
        assert_eq!(fields(&findings), ["created_at"]);
        let mut findings = Vec::new();
        let long = SourceLabel {
            name: Some("x".repeat(31)),
            color: Some("red".into()),
            ..row
        };
        assert!(label(LegacyKind::Tag, &long, &rules(), &mut findings).is_none());
        assert_eq!(findings[0].outcome, Outcome::Skipped);
        assert!(label(LegacyKind::Category, &long, &rules(), &mut Vec::new()).is_some());
        assert!(user_id(Some("auth|42")).is_ok());
        assert!(user_id(Some("")).is_err());
        assert!(user_id(Some("a\nb")).is_err());
        assert!(user_id(None).is_err());
    }

    #[test]
    fn digests_change_with_any_part() {
        let a = digest(LegacyKind::Task, ["ab", "c"]);
        assert_eq!(a, digest(LegacyKind::Task, ["ab", "c"]));
        assert_ne!(a, digest(LegacyKind::Task, ["a", "bc"]));
        assert_ne!(a, digest(LegacyKind::Tag, ["ab", "c"]));
        assert_ne!(part::<&str>(None), part(Some("")));
    }
}
