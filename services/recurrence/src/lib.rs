//! Recurrence rules of todo-dapr tasks: one implementation for the two services that need them.
//!
//! The backend parses, validates and normalises a task's `recurrence_rule` when it is written
//! ([`Rrule::parse`], [`Rrule::normalize`]); the recurring-task service turns a completed
//! occurrence into the next due date ([`next_occurrence`]). Sharing the crate means a rule the
//! backend accepted is a rule the recurring service understands, part for part.
//!
//! # The subset
//!
//! RFC 5545 `RRULE` restricted to `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL`, `BYDAY`
//! (WEEKLY: weekdays; MONTHLY: `±nXX`), `BYMONTHDAY` (MONTHLY: 1–31 or -1), and `COUNT` or
//! `UNTIL`. Anything else is rejected at write time with a message naming the subset.
//!
//! # Date semantics
//!
//! * **From the previous due date.** The next occurrence follows the previous occurrence's
//!   *due* time, never its completion time, so a series does not drift when tasks are done
//!   late (the original system computed from `completed_at` and drifted). The time of day is
//!   kept to the nanosecond.
//! * **UTC, DST-free.** Arithmetic is on UTC calendar dates: a daily task due 09:00 UTC stays
//!   due 09:00 UTC across every daylight-saving change.
//! * **Invalid dates are skipped, not clamped** (RFC 5545 §3.3.10): a monthly series on the 31st
//!   goes Jan 31 → Mar 31 → May 31, a yearly one on Feb 29 waits for the next leap year. Clamping
//!   (Jan 31 → Feb 28) would move every later occurrence to the 28th, because each one is
//!   computed from the one before.
//! * **Weeks start on Monday** (`WKST=MO`, the RFC default), which decides which week an
//!   `INTERVAL=2` weekly series skips.
//! * **COUNT** counts occurrences with the series' first task as index 0; **UNTIL** is
//!   inclusive (a date means through the end of that UTC day).

mod next;
mod rule;

pub use next::next_occurrence;
pub use rule::{
    Frequency, MAX_COUNT, MAX_INTERVAL, MAX_RULE_LEN, Rrule, RruleError, Until, WeekdayNum,
};
