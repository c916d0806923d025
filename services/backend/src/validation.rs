//! Input rules that need no database: lengths, characters, colours, times, RRULEs, page sizes.
//!
//! Each check returns the cleaned value (trimmed, normalised) or a
//! [`ServiceError::Validation`] naming the field, so the service layer writes exactly what was
//! validated. Rules that need the database (ownership, uniqueness, per-user limits) live in
//! the service layer.
//!
//! Two rules keep values PostgreSQL would refuse from ever reaching it (a refusal there is a
//! 500, not a client error): no text field may hold NUL, which `text` and `jsonb` (the outbox
//! stores every event as `jsonb`) cannot store — one-line fields refuse every control
//! character, free text every C0 control but tab and line breaks — and every timestamp a client
//! sends must lie in [`MIN_TIMESTAMP_SECS`]`..=`[`MAX_TIMESTAMP_SECS`].

use chrono::{DateTime, Utc};

use crate::domain::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::{MAX_TAGS_PER_TASK, ServiceError};
use crate::recurrence::Rrule;

/// Longest task title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest task description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Longest category name, in characters.
pub const MAX_CATEGORY_NAME_CHARS: usize = 50;
/// Longest tag name, in characters.
pub const MAX_TAG_NAME_CHARS: usize = 30;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// Longest idempotency key of the internal next-occurrence call.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// Earliest timestamp a client may send: 1970-01-01T00:00:00Z, the Unix epoch. Nothing a task
/// schedules lies before it, and a year like 0000 or 0001 is a client's parsing or default-value
/// bug, not a date.
pub const MIN_TIMESTAMP_SECS: i64 = 0;
/// Latest second a client may send: 9999-12-31T23:59:59Z (fractions of it included). RFC 3339,
/// the `date-time` of our event schemas, has four-digit years: a later time is written
/// `+10000-…`, which is no RFC 3339 — strict parsers such as Go's (daprd reads a reminder's job
/// `dueTime` with it) refuse it.
pub const MAX_TIMESTAMP_SECS: i64 = 253_402_300_799;

/// Whether `value` holds a control character (C0, DEL or C1, NUL included): none belongs in a
/// one-line value such as a name, a token subject or a key.
pub fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// Whether free text may hold `c`: everything but the C0 controls other than tab, line feed and
/// carriage return (NUL above all, which PostgreSQL refuses in `text` and `jsonb`).
fn allowed_in_text(c: char) -> bool {
    c >= ' ' || matches!(c, '\t' | '\n' | '\r')
}

/// Refuses free text with a character [`allowed_in_text`] rejects, naming its position.
fn free_text(field: &'static str, value: &str) -> Result<(), ServiceError> {
    match value.chars().position(|c| !allowed_in_text(c)) {
        None => Ok(()),
        Some(at) => Err(ServiceError::validation(
            field,
            format!(
                "{field} must not contain control characters other than tab and line breaks \
                 (found one at character {})",
                at + 1
            ),
        )),
    }
}

/// Refuses `value` when it has more than `max` characters.
fn at_most(field: &'static str, value: &str, max: usize) -> Result<(), ServiceError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(ServiceError::validation(
            field,
            format!("{field} must be at most {max} characters (got {chars})"),
        ));
    }
    Ok(())
}

/// A name-like field: trimmed, 1..=`max` characters, no control characters.
fn name_like(field: &'static str, value: &str, max: usize) -> Result<String, ServiceError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::validation(
            field,
            format!("{field} must not be empty"),
        ));
    }
    at_most(field, trimmed, max)?;
    if has_control(trimmed) {
        return Err(ServiceError::validation(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A task title: trimmed, 1–200 characters, one line.
pub fn title(value: &str) -> Result<String, ServiceError> {
    name_like("title", value, MAX_TITLE_CHARS)
}

/// A task description: at most 10 000 characters, no control characters but tab and line
/// breaks; kept as written (surrounding whitespace trimmed).
pub fn description(value: &str) -> Result<String, ServiceError> {
    let trimmed = value.trim();
    free_text("description", trimmed)?;
    at_most("description", trimmed, MAX_DESCRIPTION_CHARS)?;
    Ok(trimmed.to_owned())
}

/// A category name: trimmed, 1–50 characters.
pub fn category_name(value: &str) -> Result<String, ServiceError> {
    name_like("name", value, MAX_CATEGORY_NAME_CHARS)
}

/// A tag name: trimmed, 1–30 characters.
pub fn tag_name(value: &str) -> Result<String, ServiceError> {
    name_like("name", value, MAX_TAG_NAME_CHARS)
}

/// A colour `#RRGGBB`, stored upper-case.
pub fn color(value: &str) -> Result<String, ServiceError> {
    let v = value.trim();
    let ok = v.len() == 7 && v.starts_with('#') && v.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(v.to_ascii_uppercase())
    } else {
        Err(ServiceError::validation(
            "color",
            format!("color must be #RRGGBB (six hex digits), got `{value}`"),
        ))
    }
}

/// An optional colour.
pub fn optional_color(value: Option<&str>) -> Result<Option<String>, ServiceError> {
    value.map(color).transpose()
}

/// A recurrence rule, parsed and returned in canonical form. A blank rule means "none".
pub fn recurrence_rule(value: Option<&str>) -> Result<Option<String>, ServiceError> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        // Checked before the parser, whose messages quote the offending part back.
        Some(v) if !v.chars().all(allowed_in_text) => Err(ServiceError::validation(
            "recurrence_rule",
            "recurrence_rule must not contain control characters",
        )),
        Some(v) => Rrule::parse(v)
            .map(|r| Some(r.to_string()))
            .map_err(|e| ServiceError::validation("recurrence_rule", e.to_string())),
    }
}

/// A recurring task needs a due time: its series starts there (and the recurring-task service
/// follows the due dates).
pub fn recurrence_needs_due(
    recurrence_rule: Option<&str>,
    due_at: Option<DateTime<Utc>>,
) -> Result<(), ServiceError> {
    match (recurrence_rule, due_at) {
        (Some(_), None) => Err(ServiceError::validation(
            "due_at",
            "a recurring task needs a due date (its series starts there): set one, or stop the \
             recurrence",
        )),
        _ => Ok(()),
    }
}

/// A timestamp a client sent, in `MIN_TIMESTAMP_SECS..=MAX_TIMESTAMP_SECS`.
pub fn timestamp(field: &'static str, value: DateTime<Utc>) -> Result<DateTime<Utc>, ServiceError> {
    if (MIN_TIMESTAMP_SECS..=MAX_TIMESTAMP_SECS).contains(&value.timestamp()) {
        Ok(value)
    } else {
        Err(ServiceError::validation(
            field,
            format!(
                "{field} must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z \
                 (got {value})"
            ),
        ))
    }
}

/// An optional client timestamp (see [`timestamp`]).
pub fn optional_timestamp(
    field: &'static str,
    value: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    value.map(|t| timestamp(field, t)).transpose()
}

/// A reminder time being set now: in the future, and not after the due time when there is
/// one.
pub fn remind_at(
    remind_at: DateTime<Utc>,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if remind_at <= now {
        return Err(ServiceError::validation(
            "remind_at",
            format!("remind_at must be in the future (got {remind_at}, now is {now})"),
        ));
    }
    reminder_not_after_due(remind_at, due_at)
}

/// A reminder must not come after the due time.
pub fn reminder_not_after_due(
    remind_at: DateTime<Utc>,
    due_at: Option<DateTime<Utc>>,
) -> Result<(), ServiceError> {
    match due_at {
        Some(due) if remind_at > due => Err(ServiceError::validation(
            "remind_at",
            format!("remind_at ({remind_at}) must not be after due_at ({due})"),
        )),
        _ => Ok(()),
    }
}

/// The reminder time of `set_reminder` with `remind_before_minutes`: the task must have a due
/// time, and the result must be in the future.
pub fn remind_before(
    minutes: u32,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ServiceError> {
    let due = due_at.ok_or_else(|| {
        ServiceError::validation(
            "remind_before_minutes",
            "the task has no due date; set due_at first or give remind_at instead",
        )
    })?;
    let at = due.checked_sub_signed(chrono::Duration::minutes(i64::from(minutes)));
    let Some(at) = at.filter(|at| *at > now) else {
        return Err(ServiceError::validation(
            "remind_before_minutes",
            format!("{minutes} minutes before the due date ({due}) is not in the future"),
        ));
    };
    Ok(at)
}

/// `due_before` must be after `due_after` when both are given.
pub fn due_range(
    due_after: Option<DateTime<Utc>>,
    due_before: Option<DateTime<Utc>>,
) -> Result<(), ServiceError> {
    match (due_after, due_before) {
        (Some(after), Some(before)) if after >= before => Err(ServiceError::validation(
            "due_before",
            format!("due_before ({before}) must be later than due_after ({after})"),
        )),
        _ => Ok(()),
    }
}

/// Tag ids of a new task: duplicates removed (first occurrence kept), at most 10.
pub fn tag_ids(ids: &[uuid::Uuid]) -> Result<Vec<uuid::Uuid>, ServiceError> {
    let mut unique = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    if unique.len() > MAX_TAGS_PER_TASK {
        return Err(ServiceError::LimitExceeded(format!(
            "a task can have at most {MAX_TAGS_PER_TASK} tags (got {})",
            unique.len()
        )));
    }
    Ok(unique)
}

/// A search query: trimmed, 1–200 characters, no control characters but tab and line breaks
/// (a pasted query may span lines).
pub fn search_query(value: &str) -> Result<String, ServiceError> {
    let trimmed = value.trim();
    free_text("query", trimmed)?;
    if trimmed.is_empty() {
        return Err(ServiceError::validation("query", "query must not be empty"));
    }
    at_most("query", trimmed, MAX_QUERY_CHARS)?;
    Ok(trimmed.to_owned())
}

/// The idempotency key of a generated occurrence (an event id): trimmed, 1–200 characters, one
/// line.
pub fn idempotency_key(value: &str) -> Result<String, ServiceError> {
    name_like("idempotency_key", value, MAX_IDEMPOTENCY_KEY_CHARS)
}

/// A page size: 0 means the default (50), larger than 200 is clamped to 200.
pub fn limit(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn field_of(err: ServiceError) -> Option<&'static str> {
        match err {
            ServiceError::Validation { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn titles() {
        assert_eq!(title("  Buy milk ").unwrap(), "Buy milk");
        assert_eq!(title(&"é".repeat(200)).unwrap().chars().count(), 200);
        assert_eq!(field_of(title("   ").unwrap_err()), Some("title"));
        let err = title(&"x".repeat(201)).unwrap_err();
        assert!(err.to_string().contains("at most 200"), "{err}");
        assert!(title("a\nb").is_err());
    }

    #[test]
    fn descriptions() {
        assert_eq!(description("  multi\nline  ").unwrap(), "multi\nline");
        assert_eq!(description("").unwrap(), "");
        assert_eq!(
            field_of(description(&"x".repeat(10_001)).unwrap_err()),
            Some("description")
        );
    }

    #[test]
    fn names() {
        assert_eq!(category_name(" Work ").unwrap(), "Work");
        assert!(category_name(&"x".repeat(50)).is_ok());
        assert!(category_name(&"x".repeat(51)).is_err());
        assert!(tag_name(&"x".repeat(30)).is_ok());
        assert!(
            tag_name(&"x".repeat(31))
                .unwrap_err()
                .to_string()
                .contains("at most 30")
        );
        assert_eq!(field_of(tag_name("").unwrap_err()), Some("name"));
    }

    #[test]
    fn colors() {
        assert_eq!(color("#a1b2c3").unwrap(), "#A1B2C3");
        for bad in ["a1b2c3", "#a1b2c", "#a1b2c3d", "#GGGGGG", "", "#12345é"] {
            assert_eq!(field_of(color(bad).unwrap_err()), Some("color"), "{bad}");
        }
        assert_eq!(optional_color(None).unwrap(), None);
    }

    #[test]
    fn rules() {
        assert_eq!(
            recurrence_rule(Some("freq=weekly;byday=fr,mo"))
                .unwrap()
                .as_deref(),
            Some("FREQ=WEEKLY;BYDAY=MO,FR")
        );
        assert_eq!(recurrence_rule(Some("  ")).unwrap(), None);
        assert_eq!(recurrence_rule(None).unwrap(), None);
        let err = recurrence_rule(Some("FREQ=HOURLY")).unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR");
        assert_eq!(field_of(err), Some("recurrence_rule"));
    }

    #[test]
    fn reminder_times() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let due = now + Duration::hours(2);
        assert!(remind_at(now + Duration::hours(1), Some(due), now).is_ok());
        assert!(remind_at(due, Some(due), now).is_ok());
        assert!(remind_at(now + Duration::hours(1), None, now).is_ok());
        let past = remind_at(now - Duration::seconds(1), None, now).unwrap_err();
        assert!(past.to_string().contains("future"), "{past}");
        assert!(remind_at(now, None, now).is_err());
        let late = remind_at(due + Duration::minutes(1), Some(due), now).unwrap_err();
        assert!(late.to_string().contains("after due_at"), "{late}");
        assert_eq!(field_of(late), Some("remind_at"));
    }

    #[test]
    fn reminder_before_due() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let due = now + Duration::days(1);
        assert_eq!(
            remind_before(1440 - 1, Some(due), now).unwrap(),
            now + Duration::minutes(1)
        );
        let no_due = remind_before(10, None, now).unwrap_err();
        assert!(no_due.to_string().contains("no due date"), "{no_due}");
        assert_eq!(field_of(no_due), Some("remind_before_minutes"));
        assert!(remind_before(1440, Some(due), now).is_err());
        assert!(remind_before(u32::MAX, Some(due), now).is_err());
    }

    #[test]
    fn tag_id_lists() {
        let ids: Vec<_> = (0..12u128).map(uuid::Uuid::from_u128).collect();
        assert_eq!(tag_ids(&ids[..10]).unwrap().len(), 10);
        let mut dup = ids[..10].to_vec();
        dup.extend_from_slice(&ids[..3]);
        assert_eq!(tag_ids(&dup).unwrap(), ids[..10].to_vec());
        assert_eq!(tag_ids(&ids[..11]).unwrap_err().code(), "LIMIT_EXCEEDED");
    }

    #[test]
    fn nul_and_other_control_characters_never_pass() {
        // NUL is what PostgreSQL refuses in `text` and `jsonb`: every text rule must stop it.
        let cases = [
            ("title", title("a\0b").map(drop)),
            ("description", description("a\0b").map(drop)),
            ("name", category_name("a\0b").map(drop)),
            ("name", tag_name("a\0b").map(drop)),
            ("color", color("#00000\0").map(drop)),
            ("query", search_query("a\0b").map(drop)),
            (
                "recurrence_rule",
                recurrence_rule(Some("FREQ=DAILY\0")).map(drop),
            ),
            ("idempotency_key", idempotency_key("evt\0").map(drop)),
        ];
        for (field, result) in cases {
            assert_eq!(field_of(result.unwrap_err()), Some(field));
        }
        // Free text keeps tabs and line breaks and refuses the other C0 controls.
        assert_eq!(description("a\tb\r\nc").unwrap(), "a\tb\r\nc");
        assert!(description("bell \u{7}").is_err());
        assert!(description("\u{1b}[31mred").is_err());
        assert!(search_query("two\nlines").is_ok());
        assert!(search_query("a\u{1}b").is_err());
        assert!(recurrence_rule(Some("FREQ=DAILY\u{1f}")).is_err());
        // One-line values refuse every control character.
        assert!(title("a\tb").is_err());
        assert!(has_control("next line \u{85}"));
        assert!(!has_control("plain é ✓"));
        assert_eq!(idempotency_key(" evt-1 ").unwrap(), "evt-1");
        assert!(idempotency_key(&"k".repeat(201)).is_err());
    }

    #[test]
    fn timestamps_lie_between_1970_and_9999() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        for ok in [
            "1970-01-01T00:00:00Z",
            "2030-06-01T09:00:00+02:00",
            "9999-12-31T23:59:59.999999Z",
        ] {
            assert!(timestamp("due_at", at(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            // Year 9999 in its own zone, but 10000 in UTC.
            "9999-12-31T23:59:59-00:01",
        ] {
            let err = timestamp("due_before", at(bad)).unwrap_err();
            assert!(err.to_string().contains("1970"), "{err}");
            assert_eq!(field_of(err), Some("due_before"), "{bad}");
        }
        assert_eq!(optional_timestamp("remind_at", None).unwrap(), None);
        assert!(optional_timestamp("remind_at", Some(at("0001-01-01T00:00:00Z"))).is_err());
    }

    #[test]
    fn a_recurring_task_needs_a_due_date() {
        let due = Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap();
        assert!(recurrence_needs_due(Some("FREQ=DAILY"), Some(due)).is_ok());
        assert!(recurrence_needs_due(None, None).is_ok());
        assert_eq!(
            field_of(recurrence_needs_due(Some("FREQ=DAILY"), None).unwrap_err()),
            Some("due_at")
        );
    }

    #[test]
    fn queries_and_pages() {
        assert_eq!(search_query("  milk ").unwrap(), "milk");
        assert!(search_query(" ").is_err());
        assert!(search_query(&"q".repeat(201)).is_err());
        assert_eq!(limit(0), 50);
        assert_eq!(limit(7), 7);
        assert_eq!(limit(10_000), 200);
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(due_range(Some(t), Some(t + Duration::days(1))).is_ok());
        assert!(due_range(Some(t), Some(t)).is_err());
        assert!(due_range(None, Some(t)).is_ok());
    }
}
