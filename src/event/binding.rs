//! What the server gives an event when its Thing is added. Public items of a private module:
//! the derive's code reaches them through `__private`; users never name them.

use std::sync::Arc;

use super::{Event, EventLog};
use crate::bound::AlreadyBound;

/// Where a served event's emissions go: its Thing's history, under its name. What the server
/// gives an event when its Thing is added.
pub struct Sink {
    pub(crate) log: Arc<EventLog>,
    pub(crate) name: Arc<str>,
}

/// An event seen without its data type: what the server binds.
pub trait DynEvent: Send + Sync {
    /// Sends the event's emissions where `sink` says. Fails if it already belongs to a server.
    fn bind(&self, sink: Sink) -> Result<(), AlreadyBound>;
}

impl<T: Send + Sync> DynEvent for Event<T> {
    fn bind(&self, sink: Sink) -> Result<(), AlreadyBound> {
        self.sink.set(sink).map_err(|_| AlreadyBound)
    }
}
