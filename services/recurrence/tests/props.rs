//! Property tests of the RRULE parser and the next-occurrence arithmetic (issue 12, generated
//! bad input): any text — random, or a valid rule of the grammar with one mutation — parses or
//! is refused with a typed [`RruleError`], never a panic; valid rules keep their meaning
//! through their canonical spelling; and the next occurrence of a valid rule is strictly later,
//! at the same time of day, on a day the rule selects, inside `COUNT` and `UNTIL`.

#![allow(clippy::unwrap_used, missing_docs)]

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use proptest::prelude::*;
use recurrence::{Frequency, MAX_RULE_LEN, Rrule, RruleError, Until, WeekdayNum, next_occurrence};

const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// One rule of the supported grammar, as parts still to be spelt.
#[derive(Clone, Debug)]
struct Spec {
    freq: &'static str,
    interval: Option<u32>,
    by_day: Vec<String>,
    by_month_day: Vec<i8>,
    end: Option<String>,
}

fn until_text() -> impl Strategy<Value = String> {
    let date = (1970i32..=9999, 1u32..=12, 1u32..=28);
    prop_oneof![
        date.clone()
            .prop_map(|(y, m, d)| format!("{y:04}{m:02}{d:02}")),
        (date, 0u32..24, 0u32..60, 0u32..60)
            .prop_map(|((y, m, d), h, mi, s)| format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let weekly_days = prop::collection::vec(prop::sample::select(DAYS.to_vec()), 0..8)
        .prop_map(|days| days.into_iter().map(str::to_owned).collect::<Vec<_>>());
    let ordinal = prop_oneof![1i8..=5, -5i8..=-1];
    let monthly_days = prop::collection::vec(
        (ordinal, any::<bool>(), prop::sample::select(DAYS.to_vec())),
        1..5,
    )
    .prop_map(|days| {
        days.into_iter()
            .map(|(n, plus, day)| {
                if n > 0 && plus {
                    format!("+{n}{day}")
                } else {
                    format!("{n}{day}")
                }
            })
            .collect::<Vec<_>>()
    });
    let month_days = prop::collection::vec(prop_oneof![1i8..=31, Just(-1)], 1..5);
    let by = prop_oneof![
        Just(("DAILY", Vec::new(), Vec::new())),
        Just(("YEARLY", Vec::new(), Vec::new())),
        weekly_days.prop_map(|d| ("WEEKLY", d, Vec::new())),
        Just(("MONTHLY", Vec::new(), Vec::new())),
        monthly_days.prop_map(|d| ("MONTHLY", d, Vec::new())),
        month_days.prop_map(|m| ("MONTHLY", Vec::new(), m)),
    ];
    let end = prop::option::of(prop_oneof![
        (1u32..=10_000).prop_map(|n| format!("COUNT={n}")),
        until_text().prop_map(|u| format!("UNTIL={u}")),
    ]);
    (by, prop::option::of(1u32..=1000), end).prop_map(
        |((freq, by_day, by_month_day), interval, end)| Spec {
            freq,
            interval,
            by_day,
            by_month_day,
            end,
        },
    )
}

/// `spec` spelt as a client might: parts in any order, any case, an optional `RRULE:` prefix,
/// stray spaces and empty parts.
fn spelt(spec: Spec) -> impl Strategy<Value = String> {
    let mut parts = vec![format!("FREQ={}", spec.freq)];
    parts.extend(spec.interval.map(|n| format!("INTERVAL={n}")));
    if !spec.by_day.is_empty() {
        parts.push(format!("BYDAY={}", spec.by_day.join(",")));
    }
    if !spec.by_month_day.is_empty() {
        let days: Vec<String> = spec.by_month_day.iter().map(i8::to_string).collect();
        parts.push(format!("BYMONTHDAY={}", days.join(",")));
    }
    parts.extend(spec.end);
    let n = parts.len();
    (
        Just(parts).prop_shuffle(),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), n),
        prop::sample::select(vec![";", "; ", " ;", ";;"]),
    )
        .prop_map(|(parts, prefix, lower, sep)| {
            let parts: Vec<String> = parts
                .into_iter()
                .zip(lower)
                .map(|(p, lower)| if lower { p.to_ascii_lowercase() } else { p })
                .collect();
            let body = parts.join(sep);
            if prefix {
                format!("rrule:{body}")
            } else {
                body
            }
        })
}

fn valid_rule_text() -> impl Strategy<Value = String> {
    spec().prop_flat_map(spelt)
}

/// One edit of a valid rule: a character deleted, replaced or inserted (from the grammar's
/// alphabet or anywhere), the text cut short, or its first part repeated.
fn near_valid_rule_text() -> impl Strategy<Value = String> {
    let alphabet = prop_oneof![
        prop::sample::select(
            ";=,+-0123456789TZRDAYWEKLMONHUSF :"
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ];
    (
        valid_rule_text(),
        any::<prop::sample::Index>(),
        alphabet,
        0u8..5,
    )
        .prop_map(|(text, at, c, edit)| {
            let chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            let mut out = chars.clone();
            match edit {
                0 if i < out.len() => {
                    out.remove(i);
                }
                1 if i < out.len() => out[i] = c,
                2 => out.insert(i, c),
                3 => out.truncate(i),
                _ => {
                    let part: String = chars.iter().take_while(|&&c| c != ';').collect();
                    out.extend(format!(";{part}").chars());
                }
            }
            out.into_iter().collect()
        })
}

/// A parse result is a valid rule whose canonical spelling parses back to it, or a typed
/// error with a reason.
fn check_parse(text: &str) -> Result<Option<Rrule>, TestCaseError> {
    match Rrule::parse(text) {
        Ok(rule) => {
            let canonical = rule.to_string();
            let again = Rrule::parse(&canonical);
            prop_assert_eq!(again.as_ref(), Ok(&rule), "{} -> {}", text, canonical);
            let normalized = Rrule::normalize(&canonical);
            prop_assert_eq!(normalized.as_deref(), Ok(canonical.as_str()));
            Ok(Some(rule))
        }
        Err(err) => {
            check_error(&err)?;
            Ok(None)
        }
    }
}

fn check_error(err: &RruleError) -> Result<(), TestCaseError> {
    prop_assert!(!err.reason().is_empty());
    prop_assert!(err.to_string().starts_with("invalid recurrence rule: "));
    Ok(())
}

/// Any instant from year 1 to 9999 (the backend stores 1970–9999), to the nanosecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let (min, max) = (-62_135_596_800i64, 253_402_300_799i64);
    (min..=max, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).single().unwrap())
}

/// The day of `date`'s month that `entry` (`nXX`) selects: the n-th such weekday from the
/// start, or from the end when n is negative.
fn nth_weekday(date: NaiveDate, entry: WeekdayNum) -> Option<u32> {
    let days: Vec<u32> = (1..=31)
        .filter_map(|d| NaiveDate::from_ymd_opt(date.year(), date.month(), d))
        .filter(|d| d.weekday() == entry.weekday)
        .map(|d| d.day())
        .collect();
    let n = entry.ordinal?;
    let index = if n > 0 {
        usize::from(n.unsigned_abs()) - 1
    } else {
        days.len().checked_sub(usize::from(n.unsigned_abs()))?
    };
    days.get(index).copied()
}

fn last_day(date: NaiveDate) -> u32 {
    (28..=31)
        .filter(|&d| NaiveDate::from_ymd_opt(date.year(), date.month(), d).is_some())
        .max()
        .unwrap()
}

/// Everything a next occurrence must be, given the rule and the previous one.
fn check_next(
    rule: &Rrule,
    previous: DateTime<Utc>,
    index: u32,
    next: Option<DateTime<Utc>>,
) -> Result<(), TestCaseError> {
    if rule
        .count
        .is_some_and(|c| u64::from(index) + 1 >= u64::from(c))
    {
        prop_assert_eq!(next, None, "COUNT reached");
        return Ok(());
    }
    let Some(next) = next else {
        return Ok(());
    };
    prop_assert!(next > previous, "{} -> {}", previous, next);
    prop_assert_eq!(next.time(), previous.time());
    if let Some(until) = rule.until {
        prop_assert!(until.allows(next), "{} after UNTIL", next);
    }
    let (date, days) = (next.date_naive(), (next - previous).num_days());
    let interval = i64::from(rule.interval);
    match rule.freq {
        Frequency::Daily => prop_assert_eq!(days, interval),
        Frequency::Weekly if rule.by_day.is_empty() => prop_assert_eq!(days, 7 * interval),
        Frequency::Weekly => {
            prop_assert!(
                rule.by_day.iter().any(|d| d.weekday == date.weekday()),
                "{} on {}",
                rule,
                date
            );
            prop_assert!(days <= 7 * interval);
        }
        Frequency::Monthly if !rule.by_month_day.is_empty() => {
            let last = last_day(date);
            prop_assert!(
                rule.by_month_day.iter().any(|&d| if d == -1 {
                    date.day() == last
                } else {
                    u32::from(d.unsigned_abs()) == date.day()
                }),
                "{} on {}",
                rule,
                date
            );
        }
        Frequency::Monthly if !rule.by_day.is_empty() => {
            prop_assert!(
                rule.by_day
                    .iter()
                    .any(|&e| nth_weekday(date, e) == Some(date.day())),
                "{} on {}",
                rule,
                date
            );
        }
        Frequency::Monthly => prop_assert_eq!(date.day(), previous.day()),
        Frequency::Yearly => {
            prop_assert_eq!(
                (date.month(), date.day()),
                (previous.month(), previous.day())
            );
            let step = i32::try_from(rule.interval).unwrap();
            prop_assert_eq!((date.year() - previous.year()) % step, 0);
        }
    }
    Ok(())
}

/// A rule built directly, not parsed: parts in any combination and any range, as a future
/// caller might build one.
fn any_rule_struct() -> impl Strategy<Value = Rrule> {
    let freq = prop::sample::select(vec![
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Monthly,
        Frequency::Yearly,
    ]);
    let weekday = (0u8..7).prop_map(|n| Weekday::try_from(n).unwrap());
    let by_day = prop::collection::vec(
        (prop::option::of(any::<i8>()), weekday)
            .prop_map(|(ordinal, weekday)| WeekdayNum { ordinal, weekday }),
        0..4,
    );
    let until = prop::option::of(prop_oneof![
        instant().prop_map(Until::DateTime),
        instant().prop_map(|t| Until::Date(t.date_naive())),
    ]);
    (
        freq,
        any::<u32>(),
        by_day,
        prop::collection::vec(any::<i8>(), 0..4),
        prop::option::of(any::<u32>()),
        until,
    )
        .prop_map(
            |(freq, interval, by_day, by_month_day, count, until)| Rrule {
                freq,
                interval,
                by_day,
                by_month_day,
                count,
                until,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text at all.
    #[test]
    fn any_text_parses_or_is_refused(text in any::<String>()) {
        check_parse(&text)?;
    }

    /// Text made of the grammar's words and separators, in any order.
    #[test]
    fn grammar_soup_parses_or_is_refused(
        words in prop::collection::vec(prop::sample::select(vec![
            "FREQ", "=", ";", ",", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", "INTERVAL",
            "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL", "WKST", "RRULE:", "MO", "FR", "SU", "1",
            "-1", "+2", "5", "31", "0", "20261231", "T235959Z", " ", "\n", "é", "+", "-",
        ]), 0..24),
    ) {
        check_parse(&words.concat())?;
    }

    /// Every valid rule parses, and its canonical spelling means the same rule.
    #[test]
    fn valid_rules_parse_and_round_trip(text in valid_rule_text()) {
        let rule = check_parse(&text)?;
        prop_assert!(rule.is_some(), "valid rule refused: {}", text);
    }

    /// A valid rule with one edit: parsed into a rule that round-trips, or refused.
    #[test]
    fn near_valid_rules_parse_or_are_refused(text in near_valid_rule_text()) {
        check_parse(&text)?;
    }

    /// Rules of any length around the limit: refused when longer, never a panic.
    #[test]
    fn long_rules_are_refused_over_the_limit(pad in 0usize..700, c in any::<char>()) {
        let text = format!("FREQ=DAILY;{}", c.to_string().repeat(pad));
        if text.trim().len() > MAX_RULE_LEN {
            prop_assert!(Rrule::parse(&text).is_err());
        }
        check_parse(&text)?;
    }

    /// The next occurrence of a valid rule is strictly later, at the same time of day, on a
    /// day the rule selects, inside COUNT and UNTIL.
    #[test]
    fn next_occurrence_follows_the_rule(
        text in valid_rule_text(),
        previous in instant(),
        index in prop_oneof![0u32..20, any::<u32>()],
    ) {
        let rule = Rrule::parse(&text).unwrap();
        let next = next_occurrence(&rule, previous, index);
        check_next(&rule, previous, index, next)?;
        // Without an end, daily and weekly series go on (within years 1 to 9999).
        if rule.count.is_none() && rule.until.is_none()
            && matches!(rule.freq, Frequency::Daily | Frequency::Weekly)
        {
            prop_assert!(next.is_some(), "{} ended after {}", rule, previous);
        }
    }

    /// Rules built by hand, with parts the parser never produces, at any instant chrono
    /// holds (the ends of its range included): an occurrence or none, never a panic.
    #[test]
    fn next_occurrence_never_panics(
        rule in any_rule_struct(),
        previous in prop_oneof![
            instant(),
            Just(DateTime::<Utc>::MIN_UTC),
            Just(DateTime::<Utc>::MAX_UTC),
            (-8_000_000_000_000i64..8_000_000_000_000)
                .prop_filter_map("in range", |s| Utc.timestamp_opt(s, 0).single()),
        ],
        index in any::<u32>(),
    ) {
        if let Some(next) = next_occurrence(&rule, previous, index) {
            prop_assert!(next > previous, "{:?}: {} -> {}", rule, previous, next);
            prop_assert_eq!(next.time(), previous.time());
            prop_assert_eq!(next.nanosecond(), previous.nanosecond());
        }
    }
}
