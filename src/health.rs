//! [`Health`]: whether an instrument is OK, busy, faulted or disconnected, and why; worker
//! threads and heartbeats the framework watches, so that a driver that panics or hangs says so
//! instead of leaving a frozen value.
//!
//! A Thing gets it with one field, `#[health] health: Health`. The server then adds:
//! - the read-only, observable property `state` (a [`Status`]: the state, the reason, since
//!   when), in the TD like any other and shown in the web UI's header;
//! - the event `fault` (a [`Fault`]), raised each time the Thing goes faulted;
//! - the action `clear_fault`, which returns a faulted Thing to OK.
//!
//! Actions marked `#[action(refuse_while_faulted)]` are refused with `409 Conflict` while the
//! Thing is faulted, naming the fault.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use labthings::health::{Health, State};
//!
//! let health = Health::new();
//! // A driver thread, watched: a panic in it faults the Thing with the panic's message.
//! let driver = health.spawn("driver", || panic!("lost the serial port")).unwrap();
//! let _ = driver.join();
//! let status = health.status();
//! assert_eq!(status.state, State::Faulted);
//! assert_eq!(
//!     status.reason.as_deref(),
//!     Some("worker `driver` panicked: lost the serial port")
//! );
//! health.clear();
//! assert_eq!(health.status().state, State::Ok);
//!
//! // A heartbeat: a worker that stops calling `beat` for longer than the timeout faults it.
//! let beat = health.heartbeat("poller", Duration::from_millis(50));
//! beat.beat();
//! std::thread::sleep(Duration::from_millis(400));
//! assert!(health.is_faulted());
//! ```

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::property::Property;

/// The names `#[health]` adds to a Thing.
pub(crate) const STATE: &str = "state";
pub(crate) const FAULT: &str = "fault";
pub(crate) const CLEAR_FAULT: &str = "clear_fault";

/// What an instrument is doing, in the words of a control system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Working, and ready for requests.
    Ok,
    /// Working on something (a move, an acquisition): requests may wait.
    Busy,
    /// Something went wrong and needs a person: stays until cleared (`clear_fault`).
    Faulted,
    /// The hardware is not reachable (unplugged, powered off).
    Disconnected,
}

/// The value of the `state` property: the state, why, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Status {
    /// What the instrument is doing.
    pub state: State,
    /// Why, for any state but `ok`: the fault, what it is busy with, what is unplugged.
    pub reason: Option<String>,
    /// When it entered this state, by the server's clock (RFC 3339, UTC).
    pub since: DateTime<Utc>,
}

impl Status {
    fn new(state: State, reason: Option<String>) -> Self {
        Self {
            state,
            reason,
            since: Utc::now(),
        }
    }
}

/// The data of the `fault` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Fault {
    /// What went wrong.
    pub reason: String,
    /// The watched worker or heartbeat that went wrong, if it was one.
    pub source: Option<String>,
}

/// An instrument's health: its [`Status`], and the watch over its workers. A handle: clones
/// share it, so give one to each driver thread.
///
/// A fault is latched: [`set_ok`](Self::set_ok), [`set_busy`](Self::set_busy) and
/// [`set_disconnected`](Self::set_disconnected) do not end it; only [`clear`](Self::clear)
/// (the `clear_fault` action) does, so that a fault is seen by a person before the instrument
/// is used again.
#[derive(Clone, Debug)]
pub struct Health {
    state: Property<Status>,
    faults: Event<Fault>,
    /// Serialises changes, so that a fault cannot be overwritten by a racing `set_ok`.
    changes: Arc<std::sync::Mutex<()>>,
    /// The Thing's name once served, for the log.
    thing: Arc<std::sync::OnceLock<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// An instrument that is OK.
    pub fn new() -> Self {
        Self {
            state: Property::new(Status::new(State::Ok, None)),
            faults: Event::new(),
            changes: Arc::new(std::sync::Mutex::new(())),
            thing: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The status now.
    pub fn status(&self) -> Status {
        self.state.get()
    }

    /// Whether the instrument is faulted (and so refuses `refuse_while_faulted` actions).
    pub fn is_faulted(&self) -> bool {
        self.state.get().state == State::Faulted
    }

    /// OK again, unless faulted.
    pub fn set_ok(&self) {
        self.set_unless_faulted(State::Ok, None);
    }

    /// Busy with `reason`, unless faulted.
    pub fn set_busy(&self, reason: impl Into<String>) {
        self.set_unless_faulted(State::Busy, Some(reason.into()));
    }

    /// Disconnected, with `reason`, unless faulted.
    pub fn set_disconnected(&self, reason: impl Into<String>) {
        self.set_unless_faulted(State::Disconnected, Some(reason.into()));
    }

    /// Faulted with `reason`, raising the `fault` event (also when already faulted: each fault
    /// is told; the status keeps the first until cleared).
    pub fn fault(&self, reason: impl Into<String>) {
        self.fault_from(None, reason.into());
    }

    /// Ends a fault: the instrument is OK again. Nothing happens if it is not faulted.
    pub fn clear(&self) {
        let _change = self.lock();
        if self.is_faulted() {
            tracing::info!(thing = self.thing_name(), "fault cleared");
            self.publish(Status::new(State::Ok, None));
        }
    }

    /// Runs `work` on a new thread named `name`, watched: if it panics, the instrument goes
    /// faulted with the panic's message. A thread that returns is not a fault.
    ///
    /// # Errors
    ///
    /// If the system cannot start a thread.
    pub fn spawn<F>(&self, name: &str, work: F) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        let health = self.clone();
        let worker = name.to_owned();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(work)) {
                    let message = panic_message(panic.as_ref());
                    health.fault_from(
                        Some(worker.clone()),
                        format!("worker `{worker}` panicked: {message}"),
                    );
                }
            })
    }

    /// [`spawn`](Self::spawn), with a [`Heartbeat`] that `work` must [`beat`](Heartbeat::beat)
    /// at least once per `timeout`: a worker that hangs faults the instrument too.
    ///
    /// # Errors
    ///
    /// If the system cannot start a thread.
    pub fn spawn_with_heartbeat<F>(
        &self,
        name: &str,
        timeout: Duration,
        work: F,
    ) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        F: FnOnce(Heartbeat) + Send + 'static,
    {
        let heartbeat = self.heartbeat(name, timeout);
        self.spawn(name, move || work(heartbeat))
    }

    /// A heartbeat named `name`, watched from now on by a small thread of its own: if
    /// [`beat`](Heartbeat::beat) is not called for longer than `timeout`, the instrument goes
    /// faulted. The watch ends when the heartbeat is dropped. For a worker the framework does
    /// not start (an async task, a callback of a vendor's SDK).
    pub fn heartbeat(&self, name: &str, timeout: Duration) -> Heartbeat {
        let shared = Arc::new(Beats {
            start: Instant::now(),
            last: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let watched = shared.clone();
        let health = self.clone();
        let source = name.to_owned();
        let timeout = timeout.max(Duration::from_millis(1));
        let period = (timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
        // If the thread cannot start, the heartbeat is simply not watched: said in the log.
        let started = std::thread::Builder::new()
            .name(format!("{name}-watch"))
            .spawn(move || {
                let mut reported = false;
                while !watched.done.load(Ordering::Acquire) {
                    std::thread::sleep(period);
                    let silent = watched.silence();
                    if silent > timeout && !reported {
                        health.fault_from(
                            Some(source.clone()),
                            format!(
                                "`{source}` has not reported for {:.1} s (its heartbeat allows {:.1} s)",
                                silent.as_secs_f64(),
                                timeout.as_secs_f64()
                            ),
                        );
                        reported = true;
                    } else if silent <= timeout {
                        reported = false;
                    }
                }
            });
        if let Err(error) = started {
            tracing::error!(heartbeat = name, %error, "the heartbeat cannot be watched");
        }
        Heartbeat { beats: shared }
    }

    /// The `state` property, for the descriptor the derive builds.
    pub(crate) fn state_property(&self) -> &Property<Status> {
        &self.state
    }

    /// The `fault` event, likewise.
    pub(crate) fn fault_event(&self) -> &Event<Fault> {
        &self.faults
    }

    fn fault_from(&self, source: Option<String>, reason: String) {
        let _change = self.lock();
        tracing::error!(thing = self.thing_name(), %reason, "fault");
        if !self.is_faulted() {
            self.publish(Status::new(State::Faulted, Some(reason.clone())));
        }
        let _ = self.faults.emit(Fault { reason, source });
    }

    fn set_unless_faulted(&self, state: State, reason: Option<String>) {
        let _change = self.lock();
        let now = self.state.get();
        if now.state != State::Faulted && (now.state != state || now.reason != reason) {
            self.publish(Status::new(state, reason));
        }
    }

    /// Names the Thing this health belongs to, for the log (once).
    pub(crate) fn set_thing(&self, name: &str) {
        let _ = self.thing.set(name.to_owned());
    }

    fn thing_name(&self) -> &str {
        self.thing.get().map_or("", String::as_str)
    }

    fn publish(&self, status: Status) {
        // A status always fits its schema: nothing to refuse.
        let _ = self.state.publish(status);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a watched worker calls to say it is alive (see [`Health::heartbeat`]). Dropping it
/// ends the watch.
#[derive(Debug)]
pub struct Heartbeat {
    beats: Arc<Beats>,
}

#[derive(Debug)]
struct Beats {
    start: Instant,
    /// Nanoseconds from `start` to the last beat.
    last: AtomicU64,
    done: AtomicBool,
}

impl Beats {
    fn silence(&self) -> Duration {
        let last = Duration::from_nanos(self.last.load(Ordering::Acquire));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Heartbeat {
    /// Says the worker is alive. Cheap: one atomic store.
    pub fn beat(&self) {
        let now = u64::try_from(self.beats.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.beats.last.store(now, Ordering::Release);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.beats.done.store(true, Ordering::Release);
    }
}

/// The message a panic carried: its `&str` or `String`, or a placeholder.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_latched_until_cleared() {
        let health = Health::new();
        health.set_busy("moving");
        assert_eq!(health.status().state, State::Busy);
        health.fault("limit switch hit");
        health.set_ok();
        health.set_busy("moving");
        let status = health.status();
        assert_eq!(status.state, State::Faulted);
        assert_eq!(status.reason.as_deref(), Some("limit switch hit"));
        health.fault("a second fault");
        assert_eq!(
            health.status().reason.as_deref(),
            Some("limit switch hit"),
            "the first fault is kept"
        );
        health.clear();
        assert_eq!(health.status().state, State::Ok);
        assert_eq!(health.status().reason, None);
    }

    #[test]
    fn a_worker_that_returns_is_not_a_fault_and_a_beating_heartbeat_is_not_either() {
        let health = Health::new();
        health
            .spawn_with_heartbeat("poller", Duration::from_millis(200), |beat| {
                for _ in 0..20 {
                    beat.beat();
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .unwrap()
            .join()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(!health.is_faulted(), "{:?}", health.status());
    }

    #[test]
    fn a_panic_with_a_formatted_message_is_told() {
        let health = Health::new();
        let code = 7;
        let _ = health
            .spawn("driver", move || panic!("error code {code}"))
            .unwrap()
            .join();
        assert_eq!(
            health.status().reason.as_deref(),
            Some("worker `driver` panicked: error code 7")
        );
    }
}
