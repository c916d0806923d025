//! The once-only records: one Dapr state key per reminder event, `email-<event id>`.
//!
//! A record moves `sending` → `sent` or `failed`, or back to nothing:
//!
//! * **claim** — before any SMTP traffic, `{"status":"sending"}` is written with `first-write`
//!   concurrency and a TTL (`ttlInSeconds`). Exactly one of several concurrent deliveries of
//!   the same event wins; the others read what is there and back off. If the winner dies
//!   mid-send, the TTL frees the claim and a redelivery tries again.
//! * **sent** — after the server accepted the mail: written last-write-wins with a long (or no)
//!   TTL. From then on every redelivery is a duplicate and sends nothing.
//! * **failed** — after a permanent refusal: a redelivery does not try again.
//! * **release** — after a transient failure the claim is deleted (only if it is still ours,
//!   checked by a random claim token and the ETag) so the retry need not wait for the TTL.
//!
//! The claim is [`DaprClient::insert_state_if_absent`] with the TTL as item metadata: a refused
//! first write is followed by a read, and only a key that is there now counts as "taken".

use std::time::Duration;

use chrono::{DateTime, Utc};
use dapr::{DaprClient, Insert, SaveItem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Prefix of every record key.
pub const KEY_PREFIX: &str = "email-";

/// Longest event id used verbatim in a key; longer (or odd) ids are hashed.
const MAX_VERBATIM_ID: usize = 128;

/// One record's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Record {
    /// A delivery holds the claim and may be talking to the mail server right now.
    Sending {
        /// When the claim was taken.
        claimed_at: DateTime<Utc>,
        /// Random token of the claiming delivery, so it only ever releases its own claim.
        claim: Uuid,
    },
    /// The mail server accepted the email.
    Sent {
        /// When it accepted it.
        sent_at: DateTime<Utc>,
        /// The email's `Message-ID`.
        message_id: String,
        /// The server's reply line (e.g. with its queue id).
        #[serde(default)]
        smtp_reply: String,
        /// Whether `reminder.sent` has been published (a redelivery re-publishes otherwise).
        #[serde(default)]
        published: bool,
    },
    /// The email can never be sent.
    Failed {
        /// When that was decided.
        failed_at: DateTime<Utc>,
        /// Why, without the recipient's mailbox.
        reason: String,
    },
    /// A status this build does not know (written by a newer one); treated as "in doubt".
    #[serde(other)]
    Unknown,
}

/// What [`Ledger::claim`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The claim is ours: go ahead and send.
    Won,
    /// Someone got there first; this is what they left.
    Taken(Record),
}

/// Reads and writes the records in one state store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ledger {
    dapr: DaprClient,
    store: String,
    claim_ttl: Duration,
    record_ttl: Option<Duration>,
}

impl Ledger {
    /// Records in `store`; claims live `claim_ttl`, final records `record_ttl` (`None`: forever).
    pub fn new(
        dapr: DaprClient,
        store: impl Into<String>,
        claim_ttl: Duration,
        record_ttl: Option<Duration>,
    ) -> Self {
        Self {
            dapr,
            store: store.into(),
            claim_ttl,
            record_ttl,
        }
    }

    /// The key of the record for CloudEvent `event_id`.
    ///
    /// Ids we publish are UUIDs and are used verbatim (readable in the store). An id that is
    /// very long or contains what Dapr reserves for its key prefix (`||`) is replaced by its
    /// UUID v5, so no producer can make the key invalid.
    pub fn key(event_id: &str) -> String {
        let safe = event_id.len() <= MAX_VERBATIM_ID
            && !event_id.contains("||")
            && event_id.chars().all(|c| !c.is_control());
        if safe {
            format!("{KEY_PREFIX}{event_id}")
        } else {
            let hashed = Uuid::new_v5(&crate::EVENT_ID_NAMESPACE, event_id.as_bytes());
            format!("{KEY_PREFIX}v5-{hashed}")
        }
    }

    /// Takes the claim on `key` with token `claim`, or reports what is there instead.
    pub async fn claim(&self, key: &str, claim: Uuid) -> Result<Claim, dapr::Error> {
        let record = Record::Sending {
            claimed_at: Utc::now(),
            claim,
        };
        let item = SaveItem::json(key, &record)?.with_ttl_seconds(self.claim_ttl.as_secs().max(1));
        match self.dapr.insert_state_if_absent(&self.store, item).await? {
            Insert::Inserted => Ok(Claim::Won),
            Insert::Existing(existing) => Ok(Claim::Taken(existing.json::<Record>()?)),
        }
    }

    /// The record under `key` and its ETag, if there is one.
    pub async fn read(&self, key: &str) -> Result<Option<(Record, Option<String>)>, dapr::Error> {
        let Some(item) = self.dapr.get_state(&self.store, key).await? else {
            return Ok(None);
        };
        let record = item.json::<Record>()?;
        Ok(Some((record, item.etag)))
    }

    /// Records that the email went out (last write wins: the mail is gone whatever was there).
    pub async fn mark_sent(&self, key: &str, record: &Record) -> Result<(), dapr::Error> {
        self.write_final(key, record).await
    }

    /// Records that the email can never be sent.
    pub async fn mark_failed(&self, key: &str, reason: &str) -> Result<(), dapr::Error> {
        let record = Record::Failed {
            failed_at: Utc::now(),
            reason: reason.to_owned(),
        };
        self.write_final(key, &record).await
    }

    /// Deletes the claim on `key` if it still carries token `claim`; otherwise leaves it.
    pub async fn release(&self, key: &str, claim: Uuid) -> Result<(), dapr::Error> {
        match self.read(key).await? {
            Some((Record::Sending { claim: current, .. }, etag)) if current == claim => {
                self.dapr
                    .delete_state(&self.store, key, etag.as_deref())
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn write_final(&self, key: &str, record: &Record) -> Result<(), dapr::Error> {
        let mut item = SaveItem::json(key, record)?;
        if let Some(ttl) = self.record_ttl {
            item = item.with_ttl_seconds(ttl.as_secs().max(1));
        }
        self.dapr.save_state(&self.store, &[item]).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_have_a_status_field() {
        let sent = Record::Sent {
            sent_at: "2026-03-03T08:00:01Z".parse().unwrap(),
            message_id: "<x@localhost>".into(),
            smtp_reply: "2.0.0 Ok".into(),
            published: false,
        };
        let value = serde_json::to_value(&sent).unwrap();
        assert_eq!(value["status"], "sent");
        assert_eq!(serde_json::from_value::<Record>(value).unwrap(), sent);
        let unknown: Record = serde_json::from_value(json!({"status": "bounced"})).unwrap();
        assert_eq!(unknown, Record::Unknown);
        let older: Record = serde_json::from_value(json!({
            "status": "sent", "sent_at": "2026-03-03T08:00:01Z", "message_id": "<x@y>"
        }))
        .unwrap();
        assert!(matches!(
            older,
            Record::Sent {
                published: false,
                ..
            }
        ));
    }

    #[test]
    fn keys_are_readable_for_uuids_and_safe_for_anything() {
        let id = "0192f5a0-0000-7000-8000-000000000001";
        assert_eq!(Ledger::key(id), format!("email-{id}"));
        for odd in ["a||b", &"x".repeat(500), "line\nbreak"] {
            let key = Ledger::key(odd);
            assert!(key.starts_with("email-v5-"), "{key}");
            assert!(!key.contains("||"));
            assert_eq!(key, Ledger::key(odd), "stable");
        }
        assert_ne!(Ledger::key("a||b"), Ledger::key("a||c"));
    }
}
