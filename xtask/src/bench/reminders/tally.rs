//! Which reminder each received mail is for, and whether every reminder was mailed exactly once.
//!
//! The scenario titles its tasks `<prefix><index>`, and email-delivery writes the subject as
//! `Reminder: <title>`, so a mail names its reminder by index without reading the body (whose
//! encoding lettre chooses). Matching on the parsed index rather than on a substring keeps
//! `…-1` from also matching `…-12`.

use std::time::{Duration, SystemTime};

/// What email-delivery puts before the task's title in the subject.
const SUBJECT_PREFIX: &str = "Reminder: ";

/// The index of the reminder that `subject` is about: the number after `title_prefix`, when it
/// is below `reminders`.
pub(super) fn reminder_index(subject: &str, title_prefix: &str, reminders: usize) -> Option<usize> {
    let index: usize = subject
        .trim()
        .strip_prefix(SUBJECT_PREFIX)?
        .strip_prefix(title_prefix)?
        .parse()
        .ok()?;
    (index < reminders).then_some(index)
}

/// One received mail as the tally needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Received {
    /// The reminder it names, if it names one of this run's.
    pub(super) index: Option<usize>,
    /// When the SMTP sink accepted it.
    pub(super) at: SystemTime,
}

/// The mails held against the reminders that were due.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Tally {
    /// Per reminder, when its first mail was accepted (`None`: never mailed).
    pub(super) first: Vec<Option<SystemTime>>,
    /// Mails beyond the first for a reminder.
    pub(super) duplicates: usize,
    /// Reminders that got more than one mail, in index order.
    pub(super) duplicated: Vec<usize>,
    /// Mails that name no reminder of this run.
    pub(super) strays: usize,
}

impl Tally {
    /// Tallies `mails` against `reminders` reminders.
    pub(super) fn of(mails: &[Received], reminders: usize) -> Self {
        let mut first = vec![None; reminders];
        let mut count = vec![0usize; reminders];
        let mut strays = 0;
        for mail in mails {
            let Some(i) = mail.index.filter(|&i| i < reminders) else {
                strays += 1;
                continue;
            };
            count[i] += 1;
            // Mails are usually in order, but two sessions may finish out of order.
            let earlier = first[i].is_none_or(|t| mail.at < t);
            if earlier {
                first[i] = Some(mail.at);
            }
        }
        let duplicated: Vec<usize> = (0..reminders).filter(|&i| count[i] > 1).collect();
        Self {
            first,
            duplicates: count.iter().map(|n| n.saturating_sub(1)).sum(),
            duplicated,
            strays,
        }
    }

    /// Reminders never mailed, in index order.
    pub(super) fn missing(&self) -> Vec<usize> {
        (0..self.first.len())
            .filter(|&i| self.first[i].is_none())
            .collect()
    }

    /// Each mailed reminder's lateness: its first mail's acceptance − its due time. A mail
    /// accepted before its reminder was due counts as zero here and in `early`.
    pub(super) fn lateness(&self, due: &[SystemTime]) -> Lateness {
        let mut out = Lateness::default();
        for (first, due) in self.first.iter().zip(due) {
            let Some(at) = first else { continue };
            match at.duration_since(*due) {
                Ok(late) => out.samples.push(late),
                Err(_) => {
                    out.early += 1;
                    out.samples.push(Duration::ZERO);
                }
            }
        }
        out
    }
}

/// Lateness samples, one per mailed reminder.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Lateness {
    /// In reminder order.
    pub(super) samples: Vec<Duration>,
    /// Mails accepted before their reminder was due (the Scheduler fired early).
    pub(super) early: usize,
}

/// `values` shortened to its first `max` entries, for an error message.
pub(super) fn some_of(values: &[usize], max: usize) -> String {
    let shown: Vec<String> = values.iter().take(max).map(ToString::to_string).collect();
    let more = values.len().saturating_sub(max);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_subject_names_its_reminder_by_the_whole_number() {
        assert_eq!(
            reminder_index("Reminder: fanin-7-12", "fanin-7-", 20),
            Some(12)
        );
        assert_eq!(
            reminder_index("Reminder: fanin-7-1", "fanin-7-", 20),
            Some(1)
        );
        // Beyond the run, another run's prefix, a suffix, no prefix at all.
        assert_eq!(reminder_index("Reminder: fanin-7-20", "fanin-7-", 20), None);
        assert_eq!(reminder_index("Reminder: fanin-8-1", "fanin-7-", 20), None);
        assert_eq!(reminder_index("Reminder: fanin-7-1x", "fanin-7-", 20), None);
        assert_eq!(reminder_index("fanin-7-1", "fanin-7-", 20), None);
    }

    #[test]
    fn each_once_counts_missing_duplicates_and_strays() {
        let mails = [
            Received {
                index: Some(0),
                at: at(1_000),
            },
            Received {
                index: Some(2),
                at: at(1_500),
            },
            // Reminder 2 again, accepted earlier than the first seen: the earlier one counts.
            Received {
                index: Some(2),
                at: at(1_200),
            },
            Received {
                index: None,
                at: at(1_300),
            },
        ];
        let tally = Tally::of(&mails, 3);
        assert_eq!(tally.missing(), vec![1]);
        assert_eq!((tally.duplicates, tally.strays), (1, 1));
        assert_eq!(tally.duplicated, vec![2]);
        assert_eq!(tally.first[2], Some(at(1_200)));

        let once = Tally::of(&mails[..2], 2);
        assert_eq!((once.missing(), once.duplicates), (vec![1], 0));
        let all = Tally::of(&mails[..2], 1);
        // Index 2 is outside a run of one reminder: a stray, not a reminder.
        assert!(all.missing().is_empty() && all.duplicates == 0 && all.strays == 1);
    }

    #[test]
    fn lateness_is_from_the_due_time_to_the_first_mail() {
        let mails = [
            Received {
                index: Some(0),
                at: at(1_250),
            },
            Received {
                index: Some(1),
                at: at(1_900),
            },
        ];
        let tally = Tally::of(&mails, 3);
        let lateness = tally.lateness(&[at(1_000), at(2_000), at(3_000)]);
        assert_eq!(
            lateness.samples,
            vec![Duration::from_millis(250), Duration::ZERO]
        );
        assert_eq!(lateness.early, 1);
    }

    #[test]
    fn long_lists_are_shortened() {
        assert_eq!(some_of(&[1, 2, 3], 5), "1, 2, 3");
        assert_eq!(some_of(&[1, 2, 3, 4], 2), "1, 2 and 2 more");
        assert_eq!(some_of(&[], 2), "");
    }
}
