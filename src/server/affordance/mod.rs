//! One module per kind of affordance, each owning everything about serving that kind: its
//! routes and their handlers, its OpenAPI operations, and its entry in the Thing Description.
//!
//! - [`property`]: `GET`/`PUT /{thing}/{property}`, the TD's `properties`.
//! - [`action`]: `POST`/`GET /{thing}/{action}`, the TD's `actions`.
//! - [`stream`]: `GET /{thing}/{stream}` with its snapshot and viewer, the TD's `links`.
//! - [`event`]: `GET /{thing}/{event}` as Server-Sent Events, the TD's `events`.
//!
//! Each module has one entry point, `serve`, with the same shape: the Thing, one descriptor,
//! the server's [`Context`], and the [`RouteTable`](super::route_table::RouteTable) and
//! [`ThingDescription`](crate::td::ThingDescription) to add to. A new kind of affordance is a
//! new file here with its `serve`, one line in `assemble.rs`, and its macro support.

pub(crate) mod action;
pub(crate) mod event;
pub(crate) mod property;
pub(crate) mod stream;

use std::sync::Arc;

use super::base::Base;
use super::metrics::Metrics;
use super::sse::SseScope;
use crate::action::Invocations;

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
}
