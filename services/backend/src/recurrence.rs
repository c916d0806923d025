//! The RRULE subset tasks may recur by, re-exported from the shared `recurrence` crate.
//!
//! The parser moved there so the recurring-task service computes next dates from exactly the
//! rules this backend accepts; validation keeps importing it from here.

pub use ::recurrence::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurrence_rules_come_from_the_shared_crate() {
        assert_eq!(
            Rrule::normalize("rrule:freq=weekly;byday=fr,mo").as_deref(),
            Ok("FREQ=WEEKLY;BYDAY=MO,FR")
        );
        assert!(Rrule::parse("FREQ=HOURLY").is_err());
    }
}
