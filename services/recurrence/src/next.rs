//! Date arithmetic: the occurrence that follows a given one.
//!
//! [`next_occurrence`] never sees the series' start (DTSTART): it treats the previous due date
//! as an occurrence of the series and asks what comes next, which is all the recurring service
//! knows and all it needs. Each frequency first looks for a later matching day in the previous
//! occurrence's own period (week or month), then in the period `INTERVAL` periods on, and so
//! on, skipping periods that have no matching day (RFC 5545: invalid dates are ignored).

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};

use crate::{Frequency, Rrule, WeekdayNum};

/// Most periods (months or years) searched for a matching day. A 400-year Gregorian cycle is
/// 4800 months: a pattern with no day in that many periods has none ever.
const MAX_PERIODS: u32 = 4800;

/// The occurrence of `rule` that follows `previous_due`, or `None` when the series has ended.
///
/// `occurrence_index` is the previous occurrence's position in its series (0 for the task the
/// user created). The result is strictly after `previous_due`, on the day the rule gives, at
/// `previous_due`'s time of day (UTC). It is `None` when the next index would reach `COUNT`,
/// when the next date is after `UNTIL`, or when it would fall outside the representable range.
///
/// Without `BYDAY`/`BYMONTHDAY`, MONTHLY and YEARLY repeat `previous_due`'s day of the month
/// (and month), skipping periods where that day does not exist: monthly from Jan 31 gives
/// Mar 31, yearly from Feb 29 the next Feb 29 on the interval. Parts a frequency does not take
/// (never produced by [`Rrule::parse`]) are ignored; an `interval` of 0 counts as 1.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use recurrence::{Rrule, next_occurrence};
///
/// let rule = Rrule::parse("FREQ=MONTHLY").unwrap();
/// let jan31 = Utc.with_ymd_and_hms(2026, 1, 31, 9, 0, 0).unwrap();
/// let next = next_occurrence(&rule, jan31, 0);
/// assert_eq!(next, Some(Utc.with_ymd_and_hms(2026, 3, 31, 9, 0, 0).unwrap()));
/// ```
pub fn next_occurrence(
    rule: &Rrule,
    previous_due: DateTime<Utc>,
    occurrence_index: u32,
) -> Option<DateTime<Utc>> {
    if let Some(count) = rule.count
        && occurrence_index.checked_add(1)? >= count
    {
        return None;
    }
    let previous = previous_due.naive_utc();
    let date = previous.date();
    let interval = rule.interval.max(1);
    let next_date = match rule.freq {
        Frequency::Daily => date.checked_add_days(Days::new(u64::from(interval))),
        Frequency::Weekly => next_weekly(date, interval, &rule.by_day),
        Frequency::Monthly => next_monthly(date, interval, rule),
        Frequency::Yearly => next_yearly(date, interval),
    }?;
    let next = next_date.and_time(previous.time()).and_utc();
    match rule.until {
        Some(until) if !until.allows(next) => None,
        _ => Some(next),
    }
}

/// WEEKLY: the next listed weekday later in the same Monday-based week, else the first listed
/// weekday `interval` weeks on; without `BYDAY`, the same weekday `interval` weeks on.
fn next_weekly(date: NaiveDate, interval: u32, by_day: &[WeekdayNum]) -> Option<NaiveDate> {
    let step = u64::from(interval) * 7;
    let today = date.weekday().num_days_from_monday();
    let listed = || by_day.iter().map(|d| d.weekday.num_days_from_monday());
    if let Some(later) = listed().filter(|&d| d > today).min() {
        return date.checked_add_days(Days::new(u64::from(later - today)));
    }
    match listed().min() {
        None => date.checked_add_days(Days::new(step)),
        Some(first) => date
            .checked_sub_days(Days::new(u64::from(today)))?
            .checked_add_days(Days::new(step + u64::from(first))),
    }
}

/// MONTHLY: the next matching day later in the same month, else the first matching day of the
/// first month `interval`, `2 × interval`, … months on that has one.
fn next_monthly(date: NaiveDate, interval: u32, rule: &Rrule) -> Option<NaiveDate> {
    let (year, month) = (date.year(), date.month());
    if let Some(day) = month_days(rule, year, month, date.day())
        .into_iter()
        .find(|&d| d > date.day())
    {
        return NaiveDate::from_ymd_opt(year, month, day);
    }
    // Months counted from year 0, so stepping is plain addition.
    let mut index = i64::from(year) * 12 + i64::from(month - 1);
    for _ in 0..MAX_PERIODS {
        index += i64::from(interval);
        let year = i32::try_from(index.div_euclid(12)).ok()?;
        let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
        if year > NaiveDate::MAX.year() {
            return None;
        }
        if let Some(&day) = month_days(rule, year, month, date.day()).first() {
            return NaiveDate::from_ymd_opt(year, month, day);
        }
    }
    None
}

/// YEARLY: the same month and day `interval`, `2 × interval`, … years on, skipping years where
/// the day does not exist (Feb 29).
fn next_yearly(date: NaiveDate, interval: u32) -> Option<NaiveDate> {
    let step = i32::try_from(interval).ok()?;
    let mut year = date.year();
    for _ in 0..MAX_PERIODS {
        year = year.checked_add(step)?;
        if year > NaiveDate::MAX.year() {
            return None;
        }
        if let Some(next) = NaiveDate::from_ymd_opt(year, date.month(), date.day()) {
            return Some(next);
        }
    }
    None
}

/// The days of `year`-`month` the rule selects, ascending: `BYMONTHDAY` and/or `BYDAY` (both
/// given: days matching both, as RFC 5545 combines them), else `anchor_day` if the month has it.
fn month_days(rule: &Rrule, year: i32, month: u32, anchor_day: u32) -> Vec<u32> {
    let Some(len) = days_in_month(year, month) else {
        return Vec::new();
    };
    let by_month_day = || {
        rule.by_month_day
            .iter()
            .filter_map(move |&d| resolve_month_day(d, len))
    };
    let mut days: Vec<u32> = match (rule.by_month_day.is_empty(), rule.by_day.is_empty()) {
        (true, true) => (anchor_day <= len)
            .then_some(anchor_day)
            .into_iter()
            .collect(),
        (false, true) => by_month_day().collect(),
        (true, false) => weekday_days(&rule.by_day, year, month, len),
        (false, false) => {
            let weekdays = weekday_days(&rule.by_day, year, month, len);
            by_month_day().filter(|d| weekdays.contains(d)).collect()
        }
    };
    days.sort_unstable();
    days.dedup();
    days
}

/// `BYMONTHDAY` entry `d` in a month of `len` days: 1..=len from the start, -1 = last day,
/// -n from the end; `None` when the month has no such day.
fn resolve_month_day(d: i8, len: u32) -> Option<u32> {
    let day = if d > 0 {
        u32::from(d.unsigned_abs())
    } else {
        (len + 1).checked_sub(u32::from(d.unsigned_abs()))?
    };
    (1..=len).contains(&day).then_some(day)
}

/// The days selected by `BYDAY` entries in a month: `nXX` is the n-th such weekday (from the
/// end when negative), if the month has one; a plain `XX` is every such weekday.
fn weekday_days(by_day: &[WeekdayNum], year: i32, month: u32, len: u32) -> Vec<u32> {
    let mut days = Vec::new();
    for entry in by_day {
        let Some(first) = first_weekday_of_month(year, month, entry.weekday) else {
            continue;
        };
        let all: Vec<u32> = (first..=len).step_by(7).collect();
        let n = entry
            .ordinal
            .map(|n| (n > 0, usize::from(n.unsigned_abs())));
        match n {
            None => days.extend(all),
            Some((true, n)) => days.extend(n.checked_sub(1).and_then(|i| all.get(i))),
            Some((false, n)) => days.extend(all.len().checked_sub(n).and_then(|i| all.get(i))),
        }
    }
    days
}

/// The day of the month of the first `weekday` in `year`-`month`.
fn first_weekday_of_month(year: i32, month: u32, weekday: Weekday) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?.weekday();
    let offset = (7 + weekday.num_days_from_monday() - first.num_days_from_monday()) % 7;
    Some(1 + offset)
}

/// The number of days in `year`-`month`.
fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match next {
        Some(next) => u32::try_from(next.signed_duration_since(first).num_days()).ok(),
        // December of the last representable year.
        None => Some(31),
    }
}

#[cfg(test)]
mod tests;
