use chrono::{Duration, NaiveDateTime, TimeZone, Timelike};

use super::*;

fn rule(text: &str) -> Rrule {
    Rrule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
fn at(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .and_utc()
}

/// `YYYY-MM-DD` at 09:00 UTC.
fn day(s: &str) -> DateTime<Utc> {
    at(&format!("{s} 09:00:00"))
}

fn next(text: &str, previous: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_occurrence(&rule(text), previous, 0)
}

/// The dates of a whole series, following each occurrence from the one before, as the service
/// does; at most `limit`, fewer when the series ends.
fn series(text: &str, first: DateTime<Utc>, limit: usize) -> Vec<String> {
    let rule = rule(text);
    let mut out = vec![first];
    let mut index = 0u32;
    while out.len() < limit {
        let Some(next) = next_occurrence(&rule, out[out.len() - 1], index) else {
            break;
        };
        out.push(next);
        index += 1;
    }
    out.iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect()
}

/// Each `from>to` step in `steps` (dates at 09:00 UTC, split by spaces): the occurrence after
/// `from` is `to`.
#[track_caller]
fn assert_steps(text: &str, steps: &str) {
    for step in steps.split_whitespace() {
        let (from, to) = step
            .split_once('>')
            .unwrap_or_else(|| panic!("{step}: not from>to"));
        assert_eq!(next(text, day(from)), Some(day(to)), "{text} after {from}");
    }
}

/// The whole series is `want` (dates split by spaces; the first is the first occurrence).
#[track_caller]
fn assert_series(text: &str, want: &str) {
    let want = dates(want);
    assert_eq!(series(text, day(&want[0]), 100), want, "{text}");
}

/// The series of a rule with no end starts with `want`.
#[track_caller]
fn assert_series_starts(text: &str, want: &str) {
    let want = dates(want);
    assert_eq!(series(text, day(&want[0]), want.len()), want, "{text}");
}

fn dates(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn daily_is_exactly_interval_days_later_at_the_same_time() {
    let previous = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 30, 15)
        .unwrap()
        .with_nanosecond(123_456_000)
        .unwrap();
    let next = next("FREQ=DAILY", previous).unwrap();
    assert_eq!(next - previous, Duration::days(1));
    assert_eq!(next.time(), previous.time());
    assert_eq!(
        next_occurrence(&rule("FREQ=DAILY;INTERVAL=3"), previous, 7),
        Some(previous + Duration::days(3))
    );
}

#[test]
fn daily_ignores_daylight_saving_changes() {
    // EU (Mar 29) and US (Mar 8) spring-forward dates of 2026: still exactly 24 h in UTC.
    for d in [
        "2026-03-28 01:30:00",
        "2026-03-07 23:59:59",
        "2026-10-24 02:30:00",
    ] {
        let previous = at(d);
        assert_eq!(
            next("FREQ=DAILY", previous),
            Some(previous + Duration::hours(24))
        );
    }
}

#[test]
fn daily_crosses_month_year_and_leap_day() {
    assert_steps(
        "FREQ=DAILY",
        "2024-02-28>2024-02-29 2024-02-29>2024-03-01 2026-02-28>2026-03-01 2026-12-31>2027-01-01",
    );
}

#[test]
fn weekly_without_by_day_keeps_the_weekday() {
    assert_steps("FREQ=WEEKLY", "2026-03-04>2026-03-11");
    assert_steps("FREQ=WEEKLY;INTERVAL=2", "2026-12-30>2027-01-13");
}

#[test]
fn weekly_by_day_takes_the_next_listed_weekday() {
    // 2026-03-02 is a Monday.
    let r = "FREQ=WEEKLY;BYDAY=MO,WE,FR";
    assert_steps(
        r,
        "2026-03-02>2026-03-04 2026-03-04>2026-03-06 2026-03-06>2026-03-09",
    );
    // From a day that is not listed (the user's first due date): the next listed one.
    assert_steps(r, "2026-03-03>2026-03-04 2026-03-07>2026-03-09");
    // Sunday ends the week (WKST=MO).
    assert_steps("FREQ=WEEKLY;BYDAY=SU", "2026-03-08>2026-03-15");
    assert_steps("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "2026-03-06>2026-03-09");
}

#[test]
fn weekly_interval_steps_whole_monday_weeks() {
    let r = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR";
    assert_steps(r, "2026-03-02>2026-03-06 2026-03-06>2026-03-16");
    // Saturday still belongs to the week of Mon 2026-03-02: skip one week.
    assert_steps(r, "2026-03-07>2026-03-16");
    // RFC 5545 §3.8.5.3: "every other week on Tuesday and Sunday, WKST=MO" from Tue 1997-08-05.
    assert_series(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;COUNT=4",
        "1997-08-05 1997-08-10 1997-08-19 1997-08-24",
    );
}

#[test]
fn rfc_5545_every_other_week_until() {
    // RFC 5545 §3.8.5.3: every other week on MO, WE, FR until 1997-12-24, from 1997-09-01.
    assert_series(
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;BYDAY=MO,WE,FR",
        "1997-09-01 1997-09-03 1997-09-05 1997-09-15 1997-09-17 1997-09-19 1997-09-29 \
         1997-10-01 1997-10-03 1997-10-13 1997-10-15 1997-10-17 1997-10-27 1997-10-29 \
         1997-10-31 1997-11-10 1997-11-12 1997-11-14 1997-11-24 1997-11-26 1997-11-28 \
         1997-12-08 1997-12-10 1997-12-12 1997-12-22",
    );
}

#[test]
fn monthly_keeps_the_day_and_skips_months_without_it() {
    assert_steps(
        "FREQ=MONTHLY",
        "2026-01-15>2026-02-15 2026-12-15>2027-01-15",
    );
    // RFC 5545: Jan 31 + 1 month does not exist, so February is skipped.
    assert_steps(
        "FREQ=MONTHLY",
        "2026-01-31>2026-03-31 2026-03-31>2026-05-31 2026-08-31>2026-10-31 2026-01-30>2026-03-30",
    );
    // Leap years decide February's fate for the 29th.
    assert_steps(
        "FREQ=MONTHLY",
        "2024-01-29>2024-02-29 2025-01-29>2025-03-29",
    );
    // No drift: the series stays on the 31st.
    assert_series_starts(
        "FREQ=MONTHLY",
        "2026-01-31 2026-03-31 2026-05-31 2026-07-31 2026-08-31 2026-10-31 2026-12-31 \
         2027-01-31",
    );
}

#[test]
fn monthly_interval() {
    assert_steps("FREQ=MONTHLY;INTERVAL=2", "2026-01-31>2026-03-31");
    // Apr 31 does not exist; the next month on the interval is July.
    assert_steps("FREQ=MONTHLY;INTERVAL=3", "2026-01-31>2026-07-31");
    assert_steps("FREQ=MONTHLY;INTERVAL=18", "2026-05-10>2027-11-10");
}

#[test]
fn monthly_by_month_day() {
    let r = "FREQ=MONTHLY;BYMONTHDAY=1,15";
    assert_steps(
        r,
        "2026-03-01>2026-03-15 2026-03-15>2026-04-01 2026-03-20>2026-04-01",
    );
    // RFC 5545 §3.8.5.3: the 2nd and 15th for 10 occurrences.
    assert_series(
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        "1997-09-02 1997-09-15 1997-10-02 1997-10-15 1997-11-02 1997-11-15 1997-12-02 \
         1997-12-15 1998-01-02 1998-01-15",
    );
}

#[test]
fn monthly_last_day() {
    let r = "FREQ=MONTHLY;BYMONTHDAY=-1";
    assert_series_starts(r, "2026-01-31 2026-02-28 2026-03-31 2026-04-30 2026-05-31");
    assert_steps(r, "2024-01-31>2024-02-29 2026-12-31>2027-01-31");
    // RFC 5545 §3.8.5.3: the first and last day of the month for 10 occurrences.
    assert_series(
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        "1997-09-30 1997-10-01 1997-10-31 1997-11-01 1997-11-30 1997-12-01 1997-12-31 \
         1998-01-01 1998-01-31 1998-02-01",
    );
    // Within the month: from the 15th to the last day.
    assert_steps("FREQ=MONTHLY;BYMONTHDAY=15,-1", "2026-02-15>2026-02-28");
}

#[test]
fn monthly_by_month_day_skips_months_without_that_day() {
    assert_series_starts(
        "FREQ=MONTHLY;BYMONTHDAY=31",
        "2026-01-31 2026-03-31 2026-05-31 2026-07-31 2026-08-31 2026-10-31 2026-12-31 \
         2027-01-31",
    );
    assert_steps("FREQ=MONTHLY;BYMONTHDAY=30", "2026-01-30>2026-03-30");
    assert_steps(
        "FREQ=MONTHLY;BYMONTHDAY=29",
        "2027-01-29>2027-03-29 2028-01-29>2028-02-29",
    );
    // 31 or the last day: April takes its 30th.
    assert_steps("FREQ=MONTHLY;BYMONTHDAY=31,-1", "2026-03-31>2026-04-30");
}

#[test]
fn monthly_by_day_with_ordinals() {
    // First Monday: 2026-03-02, 2026-04-06.
    assert_steps("FREQ=MONTHLY;BYDAY=1MO", "2026-03-02>2026-04-06");
    // Last Friday.
    assert_series_starts(
        "FREQ=MONTHLY;BYDAY=-1FR",
        "2026-01-30 2026-02-27 2026-03-27 2026-04-24",
    );
    // A fifth Sunday exists in March and May 2026, not in April.
    assert_steps("FREQ=MONTHLY;BYDAY=5SU", "2026-03-29>2026-05-31");
    // Several entries within one month.
    assert_series_starts(
        "FREQ=MONTHLY;BYDAY=1MO,-1FR",
        "2026-03-02 2026-03-27 2026-04-06 2026-04-24",
    );
    assert_steps("FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU", "2026-01-13>2026-04-14");
}

#[test]
fn rfc_5545_monthly_by_day_examples() {
    assert_series(
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        "1997-09-05 1997-10-03 1997-11-07 1997-12-05 1998-01-02 1998-02-06 1998-03-06 \
         1998-04-03 1998-05-01 1998-06-05",
    );
    assert_series(
        "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
        "1997-09-07 1997-09-28 1997-11-02 1997-11-30 1998-01-04 1998-01-25 1998-03-01 \
         1998-03-29 1998-05-03 1998-05-31",
    );
    assert_series(
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        "1997-09-22 1997-10-20 1997-11-17 1997-12-22 1998-01-19 1998-02-16",
    );
}

#[test]
fn yearly_and_leap_days() {
    assert_steps("FREQ=YEARLY", "2026-07-04>2027-07-04");
    assert_steps("FREQ=YEARLY;INTERVAL=5", "2026-12-31>2031-12-31");
    // Feb 29 waits for the next leap year.
    assert_steps("FREQ=YEARLY", "2024-02-29>2028-02-29");
    // 2100 is not a leap year.
    assert_steps("FREQ=YEARLY", "2096-02-29>2104-02-29");
    // ... on the interval: 2027, 2030, 2033 have none.
    assert_steps("FREQ=YEARLY;INTERVAL=3", "2024-02-29>2036-02-29");
    assert_steps("FREQ=YEARLY", "2024-02-28>2025-02-28");
}

#[test]
fn count_ends_the_series_after_count_occurrences() {
    let r = rule("FREQ=DAILY;COUNT=2");
    let first = day("2026-03-02");
    // Index 0 (the user's task) has a successor, the second occurrence (index 1) has none.
    let second = next_occurrence(&r, first, 0);
    assert_eq!(second, Some(day("2026-03-03")));
    assert_eq!(next_occurrence(&r, day("2026-03-03"), 1), None);
    assert_eq!(next_occurrence(&r, day("2026-03-03"), 5), None);
    assert_eq!(next_occurrence(&rule("FREQ=DAILY;COUNT=1"), first, 0), None);
    assert_eq!(
        series("FREQ=WEEKLY;COUNT=3", first, 100),
        dates("2026-03-02 2026-03-09 2026-03-16")
    );
    // Without COUNT the index does not matter.
    assert_eq!(
        next_occurrence(&rule("FREQ=DAILY"), first, u32::MAX),
        Some(day("2026-03-03"))
    );
}

#[test]
fn until_is_inclusive() {
    let r = "FREQ=DAILY;UNTIL=20260305T090000Z";
    assert_steps(r, "2026-03-04>2026-03-05");
    assert_eq!(next_occurrence(&rule(r), day("2026-03-05"), 1), None);
    // One second later than UNTIL is out.
    let r = "FREQ=DAILY;UNTIL=20260305T085959Z";
    assert_eq!(next(r, day("2026-03-04")), None);
    // A date covers its whole UTC day.
    let r = rule("FREQ=DAILY;UNTIL=20260305");
    assert_eq!(
        next_occurrence(&r, at("2026-03-04 23:30:00"), 0),
        Some(at("2026-03-05 23:30:00"))
    );
    assert_eq!(next_occurrence(&r, at("2026-03-05 00:00:00"), 0), None);
    // UNTIL before the skipped-to month ends the series.
    assert_eq!(next("FREQ=MONTHLY;UNTIL=20260330", day("2026-01-31")), None);
}

#[test]
fn time_of_day_is_kept_for_every_frequency() {
    let previous = at("2026-01-31 23:59:58")
        .with_nanosecond(999_999_999)
        .unwrap();
    for r in [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=TU,SU",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=YEARLY",
    ] {
        let next = next(r, previous).unwrap_or_else(|| panic!("{r}"));
        assert_eq!(next.time(), previous.time(), "{r}");
    }
}

#[test]
fn every_next_is_strictly_later_and_matches_the_rule() {
    let rules = [
        "FREQ=DAILY;INTERVAL=2",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "FREQ=WEEKLY;INTERVAL=3;BYDAY=SA,SU",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;BYMONTHDAY=1,15,31,-1",
        "FREQ=MONTHLY;INTERVAL=5;BYDAY=1MO,3WE,-1SU,5FR",
        "FREQ=YEARLY;INTERVAL=2",
    ];
    let start = day("2023-11-01");
    for text in rules {
        let r = rule(text);
        for offset in 0..800 {
            let previous = start + Duration::days(offset);
            let next = next_occurrence(&r, previous, 0).unwrap_or_else(|| panic!("{text}"));
            assert!(next > previous, "{text} from {previous}: {next}");
            assert_eq!(next.time(), previous.time());
            assert!(
                next - previous <= Duration::days(366 * 4),
                "{text} from {previous}: {next}"
            );
        }
    }
}

#[test]
fn end_of_time_gives_none_instead_of_panicking() {
    let last = NaiveDate::MAX.and_hms_opt(9, 0, 0).unwrap().and_utc();
    for r in [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;BYDAY=1MO",
        "FREQ=YEARLY;INTERVAL=1000",
    ] {
        assert_eq!(next(r, last), None, "{r}");
    }
}

#[test]
fn hand_built_rules_are_handled_defensively() {
    // `parse` never yields these; the arithmetic still terminates sensibly.
    let mut r = rule("FREQ=DAILY");
    r.interval = 0;
    assert_eq!(
        next_occurrence(&r, day("2026-03-02"), 0),
        Some(day("2026-03-03"))
    );
    // BYMONTHDAY together with BYDAY: days matching both (Friday the 13th).
    let mut r = rule("FREQ=MONTHLY;BYMONTHDAY=13");
    r.by_day = vec![WeekdayNum {
        ordinal: None,
        weekday: Weekday::Fri,
    }];
    assert_eq!(
        series_of(&r, day("2026-02-13"), 3),
        dates("2026-02-13 2026-03-13 2026-11-13")
    );
    // A combination no month has ends the search instead of looping.
    r.by_month_day = vec![20];
    r.by_day = vec![WeekdayNum {
        ordinal: Some(1),
        weekday: Weekday::Mon,
    }];
    assert_eq!(next_occurrence(&r, day("2026-02-13"), 0), None);
}

fn series_of(r: &Rrule, first: DateTime<Utc>, limit: usize) -> Vec<String> {
    let mut out = vec![first];
    while out.len() < limit {
        match next_occurrence(r, out[out.len() - 1], 0) {
            Some(next) => out.push(next),
            None => break,
        }
    }
    out.iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect()
}
