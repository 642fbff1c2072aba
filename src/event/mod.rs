//! Events: things that happen on an instrument (a move finished, a limit was hit, a capture was
//! stored), as W3C WoT event affordances.
//!
//! Declare a field `#[event] moved: Event<[i64; 3]>` and call [`Event::emit`] from any thread
//! or task; it never waits for subscribers. Clients subscribe over Server-Sent Events
//! (`GET /{thing}/{event}`, or every event of the Thing at `GET /{thing}/events`) or over the
//! Thing's websocket (`addEventObservation`). Each Thing keeps a short history of its events, so
//! an SSE client that reconnects with `Last-Event-ID` gets what it missed, then live events;
//! one that missed more than the history holds is told how many it lost.

pub(crate) mod binding;
mod log;

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use binding::Sink;
pub(crate) use log::{Delivery, EventLog};

/// An event of a Thing, whose data is a `T` (any property-value type).
///
/// A handle: clones share the event, so a driver thread can hold one and emit from there.
/// Before its Thing is served, events are dropped (nobody can be subscribed yet).
///
/// # Examples
///
/// ```
/// use labthings::Event;
///
/// let moved: Event<[i64; 3]> = Event::new();
/// let from_thread = moved.clone();
/// std::thread::spawn(move || from_thread.emit([0, 10, 0]).unwrap())
///     .join()
///     .unwrap();
/// ```
pub struct Event<T> {
    sink: Arc<OnceLock<Sink>>,
    _data: PhantomData<fn(T)>,
}

/// Why an event could not be emitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be represented as JSON.
    #[error("the event's data cannot be represented as JSON: {0}")]
    NotJson(#[from] serde_json::Error),
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        Self {
            sink: self.sink.clone(),
            _data: PhantomData,
        }
    }
}

impl<T> Default for Event<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.sink.get().map(|sink| &sink.name))
            .finish()
    }
}

impl<T> Event<T> {
    /// An event not yet served.
    pub fn new() -> Self {
        Self {
            sink: Arc::new(OnceLock::new()),
            _data: PhantomData,
        }
    }
}

impl<T: Serialize> Event<T> {
    /// Emits the event with `data` to every subscriber. Never blocks: it records the event in
    /// its Thing's history under a short lock and wakes the subscribers, who read it when they
    /// can. Callable from any thread and from async code.
    ///
    /// # Errors
    ///
    /// [`EmitError::NotJson`] if `data` cannot be serialised (a map with non-string keys, say).
    pub fn emit(&self, data: T) -> Result<(), EmitError> {
        let json = serde_json::to_string(&data)?;
        if let Some(sink) = self.sink.get() {
            sink.log.push(&sink.name, json);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::binding::DynEvent;
    use super::*;

    #[test]
    fn an_unserved_event_drops_what_it_emits_and_a_served_one_records_it() {
        let event: Event<u32> = Event::new();
        event.emit(1).unwrap();
        let log = EventLog::new(8);
        let sink = |name: &str| Sink {
            log: log.clone(),
            name: name.into(),
        };
        event.bind(sink("ticked")).unwrap();
        event.clone().emit(2).unwrap();
        let (records, lost) = log.since(0, None);
        assert_eq!(lost, 0);
        assert_eq!(records.len(), 1);
        assert_eq!(&*records[0].data, "2");
        assert_eq!(&*records[0].name, "ticked");
        assert!(event.bind(sink("again")).is_err(), "bound once");
    }

    #[test]
    fn data_that_is_not_json_is_an_error() {
        let event: Event<std::collections::HashMap<(u8, u8), u8>> = Event::new();
        let data = [((1, 2), 3)].into_iter().collect();
        assert!(matches!(event.emit(data), Err(EmitError::NotJson(_))));
    }
}
