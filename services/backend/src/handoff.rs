//! Committed outbox rows handed from the write path to this process's relay in memory, so an
//! event is published without the relay reading its row back from PostgreSQL.
//!
//! Only a task's *first* waiting rows are handed over: rows written when no earlier row of the
//! same task was waiting (`outbox::Written::first_of_task`, decided under the task's row lock).
//! Publishing those at once cannot overtake an earlier event of the task, because there is
//! none left to publish. Every other row, and every row the relay cannot take (its queue is
//! full, another process's relay is the active one), goes the usual way: a wake-up and a read.
//! A handed-over row is still an outbox row, so nothing depends on the hand-off arriving.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::outbox::OutboxRow;

/// Committed groups waiting for the relay, at most; more are left to a read.
pub const HANDOFF_CAPACITY: usize = 1024;

/// The write path's end: offers committed rows to the relay.
#[derive(Clone, Debug)]
pub struct Handoff {
    groups: mpsc::Sender<Handed>,
    leading: Arc<AtomicBool>,
}

/// The relay's end: the groups handed over, and whether this relay is the active one.
#[derive(Debug)]
pub struct HandoffInbox {
    groups: mpsc::Receiver<Handed>,
    leading: Arc<AtomicBool>,
}

/// One commit's rows of one task, in commit order, and when they were handed over.
#[derive(Debug)]
pub(crate) struct Handed {
    pub(crate) rows: Vec<OutboxRow>,
    pub(crate) at: Instant,
}

/// A hand-off holding up to `capacity` commits' groups.
pub fn channel(capacity: usize) -> (Handoff, HandoffInbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let leading = Arc::new(AtomicBool::new(false));
    (
        Handoff {
            groups: tx,
            leading: Arc::clone(&leading),
        },
        HandoffInbox {
            groups: rx,
            leading,
        },
    )
}

impl Handoff {
    /// Whether this process's relay holds the outbox lock: if not, handing rows over is
    /// pointless and the active relay elsewhere must be woken through the database.
    pub(crate) fn relay_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Hands `rows` (one task's, in commit order) to the relay; `false` if they could not be
    /// taken, and a read must find them.
    pub(crate) fn offer(&self, rows: Vec<OutboxRow>) -> bool {
        self.groups
            .try_send(Handed {
                rows,
                at: Instant::now(),
            })
            .is_ok()
    }
}

impl HandoffInbox {
    /// The next group handed over; pending forever once every `Handoff` is gone.
    pub(crate) async fn recv(&mut self) -> Handed {
        match self.groups.recv().await {
            Some(handed) => handed,
            None => std::future::pending().await,
        }
    }

    /// Drops whatever is queued: groups handed over while this relay was not the active one
    /// may have been published by the relay that was, and the next read finds the rest.
    pub(crate) fn discard_queued(&mut self) {
        while self.groups.try_recv().is_ok() {}
    }

    /// Tells the write path whether this relay is the active one.
    pub(crate) fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_inbox_refuses_and_a_drained_one_takes_again() {
        let (handoff, mut inbox) = channel(1);
        assert!(handoff.offer(Vec::new()));
        assert!(!handoff.offer(Vec::new()), "the second group finds no room");
        inbox.discard_queued();
        assert!(handoff.offer(Vec::new()));
        assert!(inbox.recv().await.rows.is_empty());
    }

    #[test]
    fn the_write_path_sees_the_relay_take_and_lose_the_lead() {
        let (handoff, inbox) = channel(4);
        assert!(!handoff.relay_leading());
        inbox.set_leading(true);
        assert!(handoff.relay_leading());
        inbox.set_leading(false);
        assert!(!handoff.relay_leading());
    }
}
