//! The [`Thing`] trait: what `#[derive(Thing)]` implements.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::event::binding::DynEvent;
use crate::property::{Constraints, DynProperty, HistoryOptions};
use crate::stream::MjpegStream;

/// The error a Thing's start hook may return; any error type converts into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An instrument served over HTTP: its properties, settings and streams, described once.
///
/// Implement it with `#[derive(Thing)]`; see the crate documentation for the attributes. The
/// descriptor feeds the HTTP routes, the Thing Description and the OpenAPI document, so the
/// three always agree.
pub trait Thing: Send + Sync + Sized + 'static {
    /// What the Thing offers: title, description, properties and streams.
    fn descriptor() -> ThingDescriptor<Self>;

    /// Runs before the server accepts requests: open the hardware here. An error stops the
    /// server from starting and is reported with the Thing's name.
    fn start(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Runs at graceful shutdown, after the last request: close the hardware here.
    fn stop(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Properties this one instance has beside the descriptor's, known only at run time: a
    /// camera's controls, found on the device it opened. They are served, documented and
    /// observed like declared ones, after them. None by default.
    fn instance_properties(&self) -> Vec<PropertyDescriptor<Self>> {
        Vec::new()
    }
}

/// How a descriptor reaches a property in a Thing: a field access for declared properties, or
/// any function of the Thing for [`Thing::instance_properties`].
pub type PropertyAccess<T> = Arc<dyn AccessProperty<T>>;

/// A function that reaches a property in a Thing: any `Fn(&T) -> &dyn DynProperty` that is
/// `Send + Sync`.
pub trait AccessProperty<T>: Send + Sync + for<'a> Fn(&'a T) -> &'a dyn DynProperty {}

impl<T, F> AccessProperty<T> for F where F: Send + Sync + for<'a> Fn(&'a T) -> &'a dyn DynProperty {}

/// Everything a Thing offers, as built by `#[derive(Thing)]` (and `#[thing_actions]`).
#[non_exhaustive]
pub struct ThingDescriptor<T> {
    /// A short human-readable name (TD `title`).
    pub title: String,
    /// What the Thing is (TD `description`); from the struct's doc comment by default.
    pub description: Option<String>,
    /// Properties and settings, in declaration order.
    pub properties: Vec<PropertyDescriptor<T>>,
    /// Live MJPEG streams, in declaration order.
    pub streams: Vec<StreamDescriptor<T>>,
    /// Actions, from `#[thing_actions]`, in declaration order.
    pub actions: Vec<crate::action::ActionDescriptor<T>>,
    /// Events, in declaration order.
    pub events: Vec<EventDescriptor<T>>,
    /// Reaches the Thing's [`Health`](crate::health::Health), if it has one (`#[health]`).
    pub health: Option<for<'a> fn(&'a T) -> &'a crate::health::Health>,
}

impl<T> ThingDescriptor<T> {
    /// A descriptor with a title and nothing else.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            description: None,
            properties: Vec::new(),
            streams: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            health: None,
        }
    }
}

/// One property of a Thing.
#[non_exhaustive]
pub struct PropertyDescriptor<T> {
    /// The name in URLs and the TD.
    pub name: &'static str,
    /// A short summary (TD `title`): the doc comment's first line.
    pub title: Option<&'static str>,
    /// The whole doc comment (TD `description`).
    pub description: Option<&'static str>,
    /// Clients may read but not write it.
    pub read_only: bool,
    /// Clients may observe changes.
    pub observable: bool,
    /// Persisted in the Thing's settings file.
    pub setting: bool,
    /// The unit of the value (`"ms"`), the TD's `unit`: shown beside the value by the web UI.
    pub unit: Option<&'static str>,
    /// Validation rules.
    pub constraints: Constraints,
    /// How much of its past the server keeps and serves (`#[property(history = "10 min")]`);
    /// `None` keeps none. The configuration's `history` option overrides it.
    pub history: Option<HistoryOptions>,
    /// The JSON Schema of the value type (JSON Schema 2020-12, subschemas inlined).
    pub schema: fn() -> Value,
    /// Reaches the property in a Thing.
    pub access: PropertyAccess<T>,
}

/// One live stream of a Thing.
#[non_exhaustive]
pub struct StreamDescriptor<T> {
    /// The name in URLs and the TD.
    pub name: &'static str,
    /// The doc comment, if any.
    pub description: Option<&'static str>,
    /// Frames the ring buffer keeps, if not the stream's own default.
    pub ringbuffer: Option<usize>,
    /// Reaches the stream in a Thing.
    pub access: for<'a> fn(&'a T) -> &'a MjpegStream,
}

/// One event of a Thing.
#[non_exhaustive]
pub struct EventDescriptor<T> {
    /// The name in URLs and the TD.
    pub name: &'static str,
    /// A short summary (TD `title`): the doc comment's first line.
    pub title: Option<&'static str>,
    /// The whole doc comment (TD `description`).
    pub description: Option<&'static str>,
    /// The unit of the event's data (`"°C"`), the TD's `data.unit`: shown by the web UI.
    pub unit: Option<&'static str>,
    /// The JSON Schema of the event's data.
    pub schema: fn() -> Value,
    /// Reaches the event in a Thing.
    pub access: for<'a> fn(&'a T) -> &'a dyn DynEvent,
}

impl<T> EventDescriptor<T> {
    /// An event with no docs.
    pub fn new(
        name: &'static str,
        schema: fn() -> Value,
        access: for<'a> fn(&'a T) -> &'a dyn DynEvent,
    ) -> Self {
        Self {
            name,
            title: None,
            description: None,
            unit: None,
            schema,
            access,
        }
    }
}

impl<T: 'static> PropertyDescriptor<T> {
    /// A read-write, observable property with no constraints and no docs.
    pub fn new(
        name: &'static str,
        schema: fn() -> Value,
        access: for<'a> fn(&'a T) -> &'a dyn DynProperty,
    ) -> Self {
        Self::reached_by(name, schema, Arc::new(access))
    }

    /// A property reached by any function of the Thing (for [`Thing::instance_properties`]).
    /// A name made at run time is leaked once, so that it lives as long as the server.
    pub fn dynamic(
        name: impl Into<String>,
        schema: fn() -> Value,
        access: impl AccessProperty<T> + 'static,
    ) -> Self {
        let name = Box::leak(name.into().into_boxed_str());
        Self::reached_by(name, schema, Arc::new(access))
    }

    fn reached_by(name: &'static str, schema: fn() -> Value, access: PropertyAccess<T>) -> Self {
        Self {
            name,
            title: None,
            description: None,
            read_only: false,
            observable: true,
            setting: false,
            unit: None,
            constraints: Constraints::default(),
            history: None,
            schema,
            access,
        }
    }
}

impl<T> StreamDescriptor<T> {
    /// A stream with no docs and the stream's own ring buffer size.
    pub fn new(name: &'static str, access: for<'a> fn(&'a T) -> &'a MjpegStream) -> Self {
        Self {
            name,
            description: None,
            ringbuffer: None,
            access,
        }
    }
}
