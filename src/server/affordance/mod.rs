//! One module per kind of affordance, each owning everything about serving that kind: its
//! routes and their handlers, its OpenAPI operations, and its entry in the Thing Description.
//!
//! - [`property`]: `GET`/`PUT /{thing}/{property}`, the TD's `properties`.
//! - [`action`]: `POST`/`GET /{thing}/{action}`, the TD's `actions`.
//! - [`stream`]: `GET /{thing}/{stream}` with its snapshot and viewer, the TD's `links`.
//! - [`event`]: `GET /{thing}/{event}` as Server-Sent Events, the TD's `events`.
//!
//! Each module has a unit struct implementing [`Affordance`]: the names its affordances take
//! under the Thing, and `serve`, which adds every affordance of its kind of one Thing to the
//! [`Serving`] state (routes with their OpenAPI operations, TD entries). Assembly loops over
//! [`kinds`]; a new kind of affordance is a new file here, one line in [`kinds`], and its macro
//! support (see `docs/architecture.md`).

pub(crate) mod action;
pub(crate) mod event;
pub(crate) mod property;
pub(crate) mod stream;

pub(crate) use action::Recordings;

use std::sync::Arc;

use super::base::Base;
use super::error::ServerError;
use super::metrics::Metrics;
use super::route_table::RouteTable;
use super::sse::SseScope;
use crate::action::Invocations;
use crate::event::EventLog;
use crate::stream::MjpegStream;
use crate::td::ThingDescription;
use crate::thing::ThingDescriptor;

/// What a Thing's routes need to know about the server.
pub(crate) struct Context {
    /// Every invocation of every action.
    pub(crate) invocations: Arc<Invocations>,
    /// The base URL of links.
    pub(crate) base: Base,
    /// Counters and per-stream statistics.
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down (websockets close with it).
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    /// What Server-Sent Events routes share.
    pub(crate) sse: SseScope,
    /// How many events (and property changes) each Thing keeps for clients that resume.
    pub(crate) event_history: usize,
    /// Where data is kept (history logs among it), if anywhere.
    pub(crate) data_folder: Option<std::path::PathBuf>,
    /// The `history` option: property histories by Thing and property name.
    pub(crate) history: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, crate::property::HistoryOptions>,
    >,
    /// The caps on running recordings.
    pub(crate) recordings: Recordings,
}

/// One Thing being served: what every kind's [`Affordance::serve`] reads, and what it adds to.
pub(crate) struct Serving<'a, T> {
    /// The Thing's name, its URL segment.
    pub(crate) name: &'a str,
    pub(crate) thing: &'a Arc<T>,
    pub(crate) descriptor: &'a ThingDescriptor<T>,
    pub(crate) context: &'a Context,
    /// The Thing's events, kept for clients that resume.
    pub(crate) events: Arc<EventLog>,
    /// Its properties' changes, likewise.
    pub(crate) changes: Arc<EventLog>,
    /// The histories of the properties that keep one, by name.
    pub(crate) histories:
        std::collections::HashMap<&'static str, Arc<crate::property::history::History>>,
    /// Its routes so far, with their documentation.
    pub(crate) routes: RouteTable,
    /// Its Thing Description so far.
    pub(crate) td: ThingDescription,
    /// Its streams, which the server stops at shutdown.
    pub(crate) streams: Vec<MjpegStream>,
}

/// A kind of affordance (properties, actions, streams, events): everything about serving it.
pub(crate) trait Affordance {
    /// The names this kind's affordances of one Thing take under `/{thing}/`, checked with
    /// every other kind's for clashes and reserved names.
    fn names<T>(descriptor: &ThingDescriptor<T>) -> Vec<&'static str>;

    /// Serves every affordance of this kind of one Thing: routes with their handlers and
    /// OpenAPI operations, and their Thing Description entries.
    ///
    /// # Errors
    ///
    /// What stops the Thing from being served (an event that already belongs to a server).
    fn serve<T: Send + Sync + 'static>(at: &mut Serving<'_, T>) -> Result<(), ServerError>;
}

/// A kind of affordance, as functions of one Thing type: what [`kinds`] lists.
pub(crate) struct Kind<T> {
    /// [`Affordance::names`].
    pub(crate) names: fn(&ThingDescriptor<T>) -> Vec<&'static str>,
    /// [`Affordance::serve`].
    pub(crate) serve: fn(&mut Serving<'_, T>) -> Result<(), ServerError>,
}

impl<T: Send + Sync + 'static> Kind<T> {
    fn of<K: Affordance>() -> Self {
        Self {
            names: K::names::<T>,
            serve: K::serve::<T>,
        }
    }
}

/// Every kind of affordance, in the order their routes are added.
pub(crate) fn kinds<T: Send + Sync + 'static>() -> [Kind<T>; 4] {
    [
        Kind::of::<property::Properties>(),
        Kind::of::<action::Actions>(),
        Kind::of::<stream::Streams>(),
        Kind::of::<event::Events>(),
    ]
}
