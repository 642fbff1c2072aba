//! [`EventLog`]: a Thing's recent events, and its subscribers' cursors into them.
//!
//! Emitting appends to a bounded ring under a short lock and bumps a `watch` channel; nothing
//! waits for subscribers. A subscriber keeps the sequence number of the last event it was given
//! and reads everything after it when woken. One that falls further behind than the ring holds
//! (a stalled connection) is told how many events it lost, then goes on from the oldest held:
//! it never holds up the emitter or another subscriber, and it is never sent an event twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures_util::Stream;
use tokio::sync::watch;

/// One emitted event.
#[derive(Debug)]
pub(crate) struct EventRecord {
    /// Its place in the Thing's sequence, from 1.
    pub(crate) seq: u64,
    /// The event's name.
    pub(crate) name: Arc<str>,
    /// Its data, as JSON text.
    pub(crate) data: Arc<str>,
    /// When it was recorded, by the server's clock.
    pub(crate) time: chrono::DateTime<chrono::Utc>,
}

/// What a subscriber is given next.
#[derive(Debug, Clone)]
pub(crate) enum Delivery {
    /// An event.
    Event(Arc<EventRecord>),
    /// This many events (of any name) were dropped from the history before the subscriber
    /// could read them.
    Lost(u64),
}

/// A Thing's recent events.
pub(crate) struct EventLog {
    ring: Mutex<Ring>,
    /// The sequence number of the newest event; subscribers wait on it.
    newest: watch::Sender<u64>,
    /// Events subscribers missed because they fell behind the history: counted when a
    /// subscriber reads past them or goes away.
    lost: AtomicU64,
    /// Where each live subscriber is, so that what a stalled one (a connection that stopped
    /// reading) is missing counts before it reads again.
    cursors: Mutex<Vec<Weak<AtomicU64>>>,
}

struct Ring {
    entries: VecDeque<Arc<EventRecord>>,
    capacity: usize,
    next: u64,
}

impl EventLog {
    /// A log keeping the newest `capacity` events (at least one).
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.clamp(1, 1024)),
                capacity: capacity.max(1),
                next: 1,
            }),
            newest: watch::Sender::new(0),
            lost: AtomicU64::new(0),
            cursors: Mutex::new(Vec::new()),
        })
    }

    /// Records an event and wakes the subscribers; returns its sequence number.
    pub(crate) fn push(&self, name: &Arc<str>, data: String) -> u64 {
        let seq = {
            let mut ring = self.lock();
            let seq = ring.next;
            ring.next += 1;
            if ring.entries.len() == ring.capacity {
                ring.entries.pop_front();
            }
            ring.entries.push_back(Arc::new(EventRecord {
                seq,
                name: name.clone(),
                data: data.into(),
                // To the microsecond, as every time the server sends.
                time: chrono::DurationRound::duration_trunc(
                    chrono::Utc::now(),
                    chrono::TimeDelta::microseconds(1),
                )
                .unwrap_or_else(|_| chrono::Utc::now()),
            }));
            seq
        };
        self.newest.send_replace(seq);
        seq
    }

    /// The sequence number of the newest event (0 before the first).
    pub(crate) fn newest(&self) -> u64 {
        *self.newest.borrow()
    }

    /// The sequence number of the oldest event held (the next one's when none is).
    pub(crate) fn oldest(&self) -> u64 {
        let ring = self.lock();
        ring.entries.front().map_or(ring.next, |entry| entry.seq)
    }

    /// Events after `after` (of `name` only, if given), oldest first, and how many events of
    /// any name after `after` are no longer held.
    pub(crate) fn since(&self, after: u64, name: Option<&str>) -> (Vec<Arc<EventRecord>>, u64) {
        let ring = self.lock();
        let oldest = ring.entries.front().map_or(ring.next, |entry| entry.seq);
        let lost = oldest.saturating_sub(after + 1);
        let records = ring
            .entries
            .iter()
            .filter(|entry| entry.seq > after && name.is_none_or(|name| *entry.name == *name))
            .cloned()
            .collect();
        (records, lost)
    }

    /// Events subscribers lost by falling behind, since the server started: those counted,
    /// and those the live subscribers are missing now (a subscriber that does not read is
    /// counted while it stalls, not only once it reads again).
    pub(crate) fn lost_total(&self) -> u64 {
        let oldest = self.oldest();
        let mut cursors = self
            .cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cursors.retain(|cursor| cursor.strong_count() > 0);
        let missing: u64 = cursors
            .iter()
            .filter_map(Weak::upgrade)
            .map(|after| oldest.saturating_sub(after.load(Ordering::Relaxed) + 1))
            .sum();
        self.lost.load(Ordering::Relaxed) + missing
    }

    /// The events after `after` (of `name` only, if given), then every new one as it is
    /// emitted. The stream never ends by itself.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        after: u64,
        name: Option<Arc<str>>,
    ) -> impl Stream<Item = Delivery> + Send + 'static {
        let position = Arc::new(AtomicU64::new(after));
        self.cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::downgrade(&position));
        let state = Cursor {
            log: self.clone(),
            after,
            position,
            name,
            pending: VecDeque::new(),
            newest: self.newest.subscribe(),
        };
        futures_util::stream::unfold(state, |mut cursor| async move {
            let delivery = cursor.next().await;
            Some((delivery, cursor))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One subscriber's place in the log.
struct Cursor {
    log: Arc<EventLog>,
    /// The sequence number of the last event read (delivered or filtered out).
    after: u64,
    /// `after`, for the log to see while this cursor is not read.
    position: Arc<AtomicU64>,
    name: Option<Arc<str>>,
    pending: VecDeque<Delivery>,
    newest: watch::Receiver<u64>,
}

impl Cursor {
    async fn next(&mut self) -> Delivery {
        loop {
            if let Some(delivery) = self.pending.pop_front() {
                return delivery;
            }
            // Marked seen before reading, so an event emitted meanwhile wakes us again.
            let newest = *self.newest.borrow_and_update();
            if newest > self.after {
                let (records, lost) = self.log.since(self.after, self.name.as_deref());
                if lost > 0 {
                    self.log.lost.fetch_add(lost, Ordering::Relaxed);
                    self.pending.push_back(Delivery::Lost(lost));
                }
                self.after = newest;
                if let Some(last) = records.last() {
                    self.after = self.after.max(last.seq);
                }
                self.position.store(self.after, Ordering::Relaxed);
                self.pending
                    .extend(records.into_iter().map(Delivery::Event));
                continue;
            }
            if self.newest.changed().await.is_err() {
                // The log is gone with its server; nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Cursor {
    /// A subscriber that goes away (a stalled connection closed) counts what it missed.
    fn drop(&mut self) {
        let missed = self.log.oldest().saturating_sub(self.after + 1);
        self.log.lost.fetch_add(missed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn names(deliveries: &[Delivery]) -> Vec<String> {
        deliveries
            .iter()
            .map(|delivery| match delivery {
                Delivery::Event(record) => format!("{}#{}", record.name, record.seq),
                Delivery::Lost(n) => format!("lost {n}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_subscriber_gets_each_event_once_in_order() {
        let log = EventLog::new(16);
        let moved: Arc<str> = "moved".into();
        let stream = log.subscribe(0, None);
        tokio::pin!(stream);
        for i in 0..3 {
            log.push(&moved, i.to_string());
        }
        let got: Vec<Delivery> = stream.as_mut().take(3).collect().await;
        assert_eq!(names(&got), ["moved#1", "moved#2", "moved#3"]);
        log.push(&moved, "3".into());
        let next = stream.next().await.unwrap();
        assert_eq!(names(&[next]), ["moved#4"]);
    }

    #[tokio::test]
    async fn resuming_after_an_id_gives_exactly_the_missed_events() {
        let log = EventLog::new(16);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        for i in 0..5 {
            log.push(if i % 2 == 0 { &a } else { &b }, i.to_string());
        }
        let got: Vec<Delivery> = log.subscribe(2, None).take(3).collect().await;
        assert_eq!(names(&got), ["a#3", "b#4", "a#5"]);
        let only_a: Vec<Delivery> = log.subscribe(0, Some(a.clone())).take(3).collect().await;
        assert_eq!(names(&only_a), ["a#1", "a#3", "a#5"]);
    }

    #[tokio::test]
    async fn a_subscriber_behind_the_history_is_told_what_it_lost() {
        let log = EventLog::new(3);
        let tick: Arc<str> = "tick".into();
        for i in 0..10 {
            log.push(&tick, i.to_string());
        }
        let got: Vec<Delivery> = log.subscribe(2, None).take(4).collect().await;
        assert_eq!(names(&got), ["lost 5", "tick#8", "tick#9", "tick#10"]);
        assert_eq!(log.lost_total(), 5);
    }

    #[tokio::test]
    async fn a_stalled_subscriber_does_not_hold_up_the_emitter_or_others() {
        let log = EventLog::new(4);
        let tick: Arc<str> = "tick".into();
        let _stalled = log.subscribe(0, None); // never polled
        let live = log.subscribe(0, None);
        tokio::pin!(live);
        for i in 0..1000 {
            log.push(&tick, i.to_string());
        }
        assert_eq!(log.newest(), 1000);
        let first = live.next().await.unwrap();
        assert!(matches!(first, Delivery::Lost(996)), "{first:?}");
        let next = live.next().await.unwrap();
        assert_eq!(names(&[next]), ["tick#997"]);
    }

    #[tokio::test]
    async fn a_subscriber_that_never_reads_counts_its_losses_once() {
        let log = EventLog::new(4);
        let moved: Arc<str> = "moved".into();
        let stalled = log.subscribe(0, None);
        tokio::pin!(stalled);
        for i in 0..10 {
            log.push(&moved, i.to_string());
        }
        // Never read, yet counted: events 1 to 6 left the history it still needs.
        assert_eq!(log.lost_total(), 6);
        // Reading tells it the same six, and counts them once.
        let first = stalled.next().await.unwrap();
        assert_eq!(names(&[first]), ["lost 6"]);
        assert_eq!(log.lost_total(), 6);
        // One that goes away without reading keeps its losses counted.
        let gone = log.subscribe(log.newest(), None);
        for i in 0..8 {
            log.push(&moved, i.to_string());
        }
        let live = log.lost_total();
        drop(gone);
        assert_eq!(
            log.lost_total(),
            live,
            "counted once, before and after it went"
        );
    }
}
