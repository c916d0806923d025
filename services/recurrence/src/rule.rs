//! The RFC 5545 RRULE subset tasks may recur by: parsed and checked when a rule is written,
//! and stored in one canonical spelling.
//!
//! Supported: `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL` (1–1000), `BYDAY` (WEEKLY: a list
//! of `MO`..`SU`; MONTHLY: a list of `±nXX` such as `1MO` or `-1FR`), `BYMONTHDAY` (MONTHLY
//! only: 1–31 or -1 for the last day), `COUNT` and `UNTIL` (not both). Everything else —
//! `BYHOUR`, `BYSETPOS`, `BYMONTH`, `WKST`, `DTSTART` lines, unknown keys — is rejected with a
//! message naming what is supported, rather than stored and silently ignored by the recurring
//! service. The series anchor (DTSTART) is the task's `due_at`, so it is not part of the rule.
//!
//! Parsing only: what the parts *mean* for dates is [`crate::next_occurrence`]'s business.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc, Weekday};

/// Longest rule text accepted.
pub const MAX_RULE_LEN: usize = 500;
/// Largest `INTERVAL`.
pub const MAX_INTERVAL: u32 = 1000;
/// Largest `COUNT`.
pub const MAX_COUNT: u32 = 10_000;

const SUPPORTED: &str = "supported: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with optional INTERVAL \
(1-1000), BYDAY (WEEKLY: MO..SU list; MONTHLY: ±nXX like 1MO or -1FR), BYMONTHDAY (MONTHLY: \
1-31 or -1), and COUNT or UNTIL";

/// How often a rule repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// Every `interval` days.
    Daily,
    /// Every `interval` weeks (on `by_day`, or the anchor's weekday).
    Weekly,
    /// Every `interval` months (on `by_month_day` / `by_day`, or the anchor's day).
    Monthly,
    /// Every `interval` years, on the anchor's month and day.
    Yearly,
}

impl Frequency {
    /// The RRULE spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "DAILY",
            Self::Weekly => "WEEKLY",
            Self::Monthly => "MONTHLY",
            Self::Yearly => "YEARLY",
        }
    }
}

/// One `BYDAY` entry: a weekday, with an ordinal within the month for MONTHLY rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeekdayNum {
    /// For MONTHLY: 1..=5 counts from the start of the month, -5..=-1 from its end
    /// (`-1FR` = last Friday). Always `None` for WEEKLY.
    pub ordinal: Option<i8>,
    /// The weekday.
    pub weekday: Weekday,
}

/// When a series ends at the latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Until {
    /// Through this date (inclusive, UTC).
    Date(NaiveDate),
    /// Through this instant (inclusive).
    DateTime(DateTime<Utc>),
}

impl Until {
    /// Whether an occurrence at `at` is still inside the series.
    pub fn allows(self, at: DateTime<Utc>) -> bool {
        match self {
            Self::Date(d) => at.date_naive() <= d,
            Self::DateTime(t) => at <= t,
        }
    }
}

/// A parsed, validated rule of the supported subset. `to_string()` gives the canonical text:
/// `FREQ`, `INTERVAL` (omitted when 1), `BYDAY`, `BYMONTHDAY`, `COUNT`, `UNTIL`, in that order,
/// upper-case, lists sorted and de-duplicated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rrule {
    /// `FREQ`.
    pub freq: Frequency,
    /// `INTERVAL`, 1..=1000 (default 1).
    pub interval: u32,
    /// `BYDAY`: WEEKLY without ordinals, MONTHLY with; empty otherwise. Sorted MO..SU
    /// (then by ordinal).
    pub by_day: Vec<WeekdayNum>,
    /// `BYMONTHDAY` (MONTHLY only): 1..=31 or -1; sorted, -1 last.
    pub by_month_day: Vec<i8>,
    /// `COUNT`: total occurrences in the series, the first one included.
    pub count: Option<u32>,
    /// `UNTIL`.
    pub until: Option<Until>,
}

/// Why a rule was rejected; the message says what is supported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid recurrence rule: {0}")]
pub struct RruleError(String);

impl RruleError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }

    /// The reason, without the "invalid recurrence rule" prefix.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl Rrule {
    /// Parses and validates `text` (an optional `RRULE:` prefix, any case).
    pub fn parse(text: &str) -> Result<Self, RruleError> {
        text.parse()
    }

    /// Parses `text` and returns its canonical spelling.
    pub fn normalize(text: &str) -> Result<String, RruleError> {
        Self::parse(text).map(|r| r.to_string())
    }
}

impl FromStr for Rrule {
    type Err = RruleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RruleError::new(format!("the rule is empty; {SUPPORTED}")));
        }
        if text.len() > MAX_RULE_LEN {
            return Err(RruleError::new(format!(
                "the rule is longer than {MAX_RULE_LEN} characters"
            )));
        }
        let upper = text.to_ascii_uppercase();
        if upper.contains(['\n', '\r']) {
            return Err(RruleError::new(
                "only a single RRULE line is accepted (no DTSTART or EXDATE lines); the series \
                 starts at the task's due time",
            ));
        }
        let body = upper.strip_prefix("RRULE:").unwrap_or(&upper);

        let mut parts = Parts::default();
        for part in body.split(';').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| RruleError::new(format!("`{part}` is not of the form KEY=VALUE")))?;
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(RruleError::new(format!("{key} has no value")));
            }
            let slot = match key {
                "FREQ" => &mut parts.freq,
                "INTERVAL" => &mut parts.interval,
                "BYDAY" => &mut parts.by_day,
                "BYMONTHDAY" => &mut parts.by_month_day,
                "COUNT" => &mut parts.count,
                "UNTIL" => &mut parts.until,
                "BYSECOND" | "BYMINUTE" | "BYHOUR" | "BYYEARDAY" | "BYWEEKNO" | "BYMONTH"
                | "BYSETPOS" | "WKST" => {
                    return Err(RruleError::new(format!(
                        "{key} is not supported; {SUPPORTED}"
                    )));
                }
                other => {
                    return Err(RruleError::new(format!(
                        "unknown rule part `{other}`; {SUPPORTED}"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(RruleError::new(format!("{key} is given more than once")));
            }
        }
        parts.build()
    }
}

/// The raw values of one rule, each at most once.
#[derive(Default)]
struct Parts<'a> {
    freq: Option<&'a str>,
    interval: Option<&'a str>,
    by_day: Option<&'a str>,
    by_month_day: Option<&'a str>,
    count: Option<&'a str>,
    until: Option<&'a str>,
}

impl Parts<'_> {
    fn build(self) -> Result<Rrule, RruleError> {
        let freq = match self.freq {
            None => return Err(RruleError::new(format!("FREQ is required; {SUPPORTED}"))),
            Some("DAILY") => Frequency::Daily,
            Some("WEEKLY") => Frequency::Weekly,
            Some("MONTHLY") => Frequency::Monthly,
            Some("YEARLY") => Frequency::Yearly,
            Some(other) => {
                return Err(RruleError::new(format!(
                    "FREQ={other} is not supported; use DAILY, WEEKLY, MONTHLY or YEARLY"
                )));
            }
        };
        let interval = match self.interval {
            None => 1,
            Some(v) => parse_number::<u32>(v)
                .filter(|n| (1..=MAX_INTERVAL).contains(n))
                .ok_or_else(|| {
                    RruleError::new(format!(
                        "INTERVAL must be a whole number from 1 to {MAX_INTERVAL}, got `{v}`"
                    ))
                })?,
        };
        let by_day = match self.by_day {
            None => Vec::new(),
            Some(v) => parse_by_day(freq, v)?,
        };
        let by_month_day = match self.by_month_day {
            None => Vec::new(),
            Some(v) => parse_by_month_day(freq, v)?,
        };
        if !by_day.is_empty() && !by_month_day.is_empty() {
            return Err(RruleError::new(
                "MONTHLY takes BYMONTHDAY or BYDAY, not both",
            ));
        }
        if self.count.is_some() && self.until.is_some() {
            return Err(RruleError::new(
                "COUNT and UNTIL cannot be used together; give one of them",
            ));
        }
        let count = match self.count {
            None => None,
            Some(v) => Some(
                parse_number::<u32>(v)
                    .filter(|n| (1..=MAX_COUNT).contains(n))
                    .ok_or_else(|| {
                        RruleError::new(format!(
                            "COUNT must be a whole number from 1 to {MAX_COUNT}, got `{v}`"
                        ))
                    })?,
            ),
        };
        let until = self.until.map(parse_until).transpose()?;
        Ok(Rrule {
            freq,
            interval,
            by_day,
            by_month_day,
            count,
            until,
        })
    }
}

/// A plain integer (an optional minus, then digits); `None` otherwise, including for a `+`
/// sign, which `FromStr` would accept.
fn parse_number<T: FromStr>(v: &str) -> Option<T> {
    if v.starts_with('+') {
        return None;
    }
    v.parse().ok()
}

fn parse_weekday(code: &str) -> Option<Weekday> {
    Some(match code {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

fn weekday_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

fn parse_by_day(freq: Frequency, value: &str) -> Result<Vec<WeekdayNum>, RruleError> {
    let monthly = match freq {
        Frequency::Weekly => false,
        Frequency::Monthly => true,
        Frequency::Daily | Frequency::Yearly => {
            return Err(RruleError::new(format!(
                "BYDAY is supported with WEEKLY and MONTHLY only, not {}; for \"every weekday\" \
                 use FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                freq.as_str()
            )));
        }
    };
    let mut days = Vec::new();
    for item in value.split(',').map(str::trim) {
        let split = item.len().saturating_sub(2);
        let (ordinal, code) = item.split_at_checked(split).unwrap_or(("", item));
        let weekday = parse_weekday(code).ok_or_else(|| {
            RruleError::new(format!(
                "BYDAY entry `{item}` is not a weekday (MO, TU, WE, TH, FR, SA, SU)"
            ))
        })?;
        let ordinal = if ordinal.is_empty() {
            if monthly {
                return Err(RruleError::new(format!(
                    "MONTHLY BYDAY needs a position, e.g. 1{code} (first) or -1{code} (last), \
                     got `{item}`"
                )));
            }
            None
        } else {
            if !monthly {
                return Err(RruleError::new(format!(
                    "WEEKLY BYDAY takes plain weekdays (e.g. MO,FR), got `{item}`"
                )));
            }
            let n = parse_number::<i8>(ordinal.strip_prefix('+').unwrap_or(ordinal))
                .filter(|n| (1..=5).contains(&n.unsigned_abs()))
                .ok_or_else(|| {
                    RruleError::new(format!(
                        "BYDAY position in `{item}` must be 1 to 5 or -1 to -5"
                    ))
                })?;
            Some(n)
        };
        days.push(WeekdayNum { ordinal, weekday });
    }
    days.sort_by_key(|d| {
        (
            d.weekday.num_days_from_monday(),
            d.ordinal.map(ordinal_rank),
        )
    });
    days.dedup();
    Ok(days)
}

/// Sort key for ordinals: 1..5 first, then -5..-1 (so `-1` = last sorts last).
fn ordinal_rank(n: i8) -> i16 {
    if n > 0 {
        i16::from(n)
    } else {
        100 + i16::from(n)
    }
}

fn parse_by_month_day(freq: Frequency, value: &str) -> Result<Vec<i8>, RruleError> {
    if freq != Frequency::Monthly {
        return Err(RruleError::new(format!(
            "BYMONTHDAY is supported with MONTHLY only, not {}",
            freq.as_str()
        )));
    }
    let mut days = Vec::new();
    for item in value.split(',').map(str::trim) {
        let day = parse_number::<i8>(item)
            .filter(|d| (1..=31).contains(d) || *d == -1)
            .ok_or_else(|| {
                RruleError::new(format!(
                    "BYMONTHDAY entry `{item}` must be 1 to 31, or -1 for the last day"
                ))
            })?;
        days.push(day);
    }
    days.sort_by_key(|d| if *d < 0 { 100 } else { *d });
    days.dedup();
    Ok(days)
}

fn parse_until(value: &str) -> Result<Until, RruleError> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y%m%d")
        && value.len() == 8
    {
        return Ok(Until::Date(date));
    }
    if let Some(local) = value.strip_suffix('Z')
        && local.len() == 15
        && let Ok(t) = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S")
    {
        return Ok(Until::DateTime(t.and_utc()));
    }
    Err(RruleError::new(format!(
        "UNTIL must be a UTC time like 20261231T235959Z or a date like 20261231, got `{value}`"
    )))
}

impl fmt::Display for Rrule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FREQ={}", self.freq.as_str())?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        if !self.by_day.is_empty() {
            f.write_str(";BYDAY=")?;
            for (i, d) in self.by_day.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                if let Some(n) = d.ordinal {
                    write!(f, "{n}")?;
                }
                f.write_str(weekday_code(d.weekday))?;
            }
        }
        if !self.by_month_day.is_empty() {
            f.write_str(";BYMONTHDAY=")?;
            for (i, d) in self.by_month_day.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{d}")?;
            }
        }
        if let Some(count) = self.count {
            write!(f, ";COUNT={count}")?;
        }
        match self.until {
            None => {}
            Some(Until::Date(d)) => write!(f, ";UNTIL={}", d.format("%Y%m%d"))?,
            Some(Until::DateTime(t)) => write!(f, ";UNTIL={}", t.format("%Y%m%dT%H%M%SZ"))?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn norm(s: &str) -> String {
        Rrule::normalize(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn reject(s: &str) -> String {
        match Rrule::parse(s) {
            Ok(r) => panic!("{s} was accepted as {r}"),
            Err(e) => e.reason().to_owned(),
        }
    }

    #[test]
    fn accepts_each_frequency() {
        assert_eq!(norm("FREQ=DAILY"), "FREQ=DAILY");
        assert_eq!(norm("FREQ=WEEKLY"), "FREQ=WEEKLY");
        assert_eq!(norm("FREQ=MONTHLY"), "FREQ=MONTHLY");
        assert_eq!(norm("FREQ=YEARLY"), "FREQ=YEARLY");
    }

    #[test]
    fn normalises_case_prefix_order_and_defaults() {
        assert_eq!(
            norm("rrule:freq=weekly;byday=fr,mo"),
            "FREQ=WEEKLY;BYDAY=MO,FR"
        );
        assert_eq!(
            norm("COUNT=3;BYDAY=WE;INTERVAL=2;FREQ=WEEKLY"),
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE;COUNT=3"
        );
        assert_eq!(norm("FREQ=DAILY;INTERVAL=1"), "FREQ=DAILY");
        assert_eq!(norm("  FREQ=DAILY; "), "FREQ=DAILY");
        assert_eq!(
            norm("FREQ=WEEKLY;BYDAY=MO,MO,SU,TU"),
            "FREQ=WEEKLY;BYDAY=MO,TU,SU"
        );
        assert_eq!(
            norm("FREQ=MONTHLY;BYMONTHDAY=-1,15,1,15"),
            "FREQ=MONTHLY;BYMONTHDAY=1,15,-1"
        );
        assert_eq!(
            norm("FREQ=MONTHLY;BYDAY=-1FR,+1MO,2MO"),
            "FREQ=MONTHLY;BYDAY=1MO,2MO,-1FR"
        );
        // Canonical text parses back to itself.
        for s in [
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;UNTIL=20261231T235959Z",
            "FREQ=MONTHLY;BYDAY=1MO,-1FR;COUNT=12",
            "FREQ=YEARLY;UNTIL=20300101",
        ] {
            assert_eq!(norm(s), s);
        }
    }

    #[test]
    fn parses_parts() {
        let r = Rrule::parse("FREQ=MONTHLY;INTERVAL=3;BYDAY=-1FR;COUNT=4").unwrap();
        assert_eq!(r.freq, Frequency::Monthly);
        assert_eq!(r.interval, 3);
        assert_eq!(
            r.by_day,
            vec![WeekdayNum {
                ordinal: Some(-1),
                weekday: Weekday::Fri
            }]
        );
        assert_eq!(r.count, Some(4));
        assert_eq!(r.until, None);

        let r = Rrule::parse("FREQ=DAILY;UNTIL=20260301T120000Z").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(r.until, Some(Until::DateTime(t)));
        assert!(r.until.unwrap().allows(t));
        assert!(!r.until.unwrap().allows(t + chrono::Duration::seconds(1)));

        let r = Rrule::parse("FREQ=DAILY;UNTIL=20260301").unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(r.until, Some(Until::Date(d)));
        assert!(
            r.until
                .unwrap()
                .allows(Utc.with_ymd_and_hms(2026, 3, 1, 23, 59, 0).unwrap())
        );
        assert!(
            !r.until
                .unwrap()
                .allows(Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap())
        );

        let r = Rrule::parse("FREQ=MONTHLY;BYMONTHDAY=-1").unwrap();
        assert_eq!(r.by_month_day, vec![-1]);
    }

    #[test]
    fn interval_bounds() {
        assert_eq!(norm("FREQ=DAILY;INTERVAL=1000"), "FREQ=DAILY;INTERVAL=1000");
        for bad in ["0", "1001", "-1", "x", "+2", "1.5"] {
            let msg = reject(&format!("FREQ=DAILY;INTERVAL={bad}"));
            assert!(msg.contains("INTERVAL"), "{msg}");
        }
    }

    #[test]
    fn count_and_until() {
        assert_eq!(norm("FREQ=DAILY;COUNT=1"), "FREQ=DAILY;COUNT=1");
        assert!(reject("FREQ=DAILY;COUNT=0").contains("COUNT"));
        assert!(reject("FREQ=DAILY;COUNT=10001").contains("COUNT"));
        assert!(reject("FREQ=DAILY;COUNT=3;UNTIL=20260101").contains("together"));
        for bad in [
            "20261301",
            "20260101T000000",
            "2026-01-01",
            "20260101T250000Z",
            "tomorrow",
        ] {
            assert!(
                reject(&format!("FREQ=DAILY;UNTIL={bad}")).contains("UNTIL"),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_unsupported_parts_naming_the_subset() {
        for key in [
            "BYHOUR=9",
            "BYSETPOS=-1",
            "BYMONTH=1",
            "WKST=SU",
            "BYMINUTE=0",
            "BYWEEKNO=1",
        ] {
            let msg = reject(&format!("FREQ=MONTHLY;{key}"));
            assert!(msg.contains("not supported"), "{msg}");
            assert!(msg.contains("supported: FREQ"), "{msg}");
        }
        assert!(reject("FREQ=DAILY;FOO=1").contains("unknown rule part `FOO`"));
        assert!(reject("FREQ=HOURLY").contains("DAILY, WEEKLY, MONTHLY or YEARLY"));
        assert!(reject("FREQ=SECONDLY").contains("not supported"));
    }

    #[test]
    fn rejects_malformed_text() {
        assert!(reject("").contains("empty"));
        assert!(reject("   ").contains("empty"));
        assert!(reject("INTERVAL=2").contains("FREQ is required"));
        assert!(reject("FREQ=DAILY;FREQ=WEEKLY").contains("more than once"));
        assert!(reject("FREQ=DAILY;COUNT").contains("KEY=VALUE"));
        assert!(reject("FREQ=DAILY;COUNT=").contains("no value"));
        assert!(reject("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY").contains("single RRULE"));
        assert!(reject(&format!("FREQ=DAILY;{}", "X".repeat(600))).contains("longer"));
    }

    #[test]
    fn by_day_rules_per_frequency() {
        assert!(reject("FREQ=DAILY;BYDAY=MO").contains("WEEKLY and MONTHLY only"));
        assert!(reject("FREQ=YEARLY;BYDAY=MO").contains("WEEKLY and MONTHLY only"));
        assert!(reject("FREQ=WEEKLY;BYDAY=1MO").contains("plain weekdays"));
        assert!(reject("FREQ=MONTHLY;BYDAY=MO").contains("needs a position"));
        assert!(reject("FREQ=WEEKLY;BYDAY=XX").contains("not a weekday"));
        assert!(reject("FREQ=WEEKLY;BYDAY=MO,").contains("not a weekday"));
        assert!(reject("FREQ=WEEKLY;BYDAY=M").contains("not a weekday"));
        assert!(reject("FREQ=MONTHLY;BYDAY=6MO").contains("1 to 5"));
        assert!(reject("FREQ=MONTHLY;BYDAY=0MO").contains("1 to 5"));
        assert!(reject("FREQ=MONTHLY;BYDAY=-6MO").contains("1 to 5"));
        assert_eq!(
            norm("FREQ=MONTHLY;BYDAY=5SU,-5SA"),
            "FREQ=MONTHLY;BYDAY=-5SA,5SU"
        );
    }

    #[test]
    fn by_month_day_rules() {
        assert!(reject("FREQ=WEEKLY;BYMONTHDAY=1").contains("MONTHLY only"));
        assert!(reject("FREQ=MONTHLY;BYMONTHDAY=0").contains("1 to 31"));
        assert!(reject("FREQ=MONTHLY;BYMONTHDAY=32").contains("1 to 31"));
        assert!(reject("FREQ=MONTHLY;BYMONTHDAY=-2").contains("1 to 31"));
        assert!(reject("FREQ=MONTHLY;BYMONTHDAY=1;BYDAY=1MO").contains("not both"));
        assert_eq!(
            norm("FREQ=MONTHLY;BYMONTHDAY=31"),
            "FREQ=MONTHLY;BYMONTHDAY=31"
        );
    }

    #[test]
    fn phrases_from_the_tool_guide() {
        // The mappings the MCP tool descriptions teach an assistant.
        for (rule, want) in [
            ("FREQ=DAILY", "FREQ=DAILY"),
            ("FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=WEEKLY;BYDAY=MO,FR"),
            ("FREQ=WEEKLY;INTERVAL=2", "FREQ=WEEKLY;INTERVAL=2"),
            (
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
            ("FREQ=MONTHLY;BYMONTHDAY=1", "FREQ=MONTHLY;BYMONTHDAY=1"),
            ("FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=-1FR"),
            ("FREQ=YEARLY", "FREQ=YEARLY"),
        ] {
            assert_eq!(norm(rule), want);
        }
    }
}
