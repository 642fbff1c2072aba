//! # labthings
//!
//! A web framework for laboratory instruments. Describe a camera, stage or spectrometer as a
//! Rust struct, derive [`Thing`], and serve it over HTTP with the protocol of
//! [labthings-fastapi](https://github.com/labthings/labthings-fastapi), so existing LabThings
//! clients keep working: property routes, a W3C Thing Description, an OpenAPI 3.1 document with
//! an offline API browser, settings that survive restarts, and live MJPEG streams.
//!
//! - [`Thing`], [`Property`], [`ThingServer`]: the framework (guide below).
//! - [`stream`]: live MJPEG streams, usable on their own with any axum router.
//! - [`serve`]: the HTTP server underneath, which bounds what each connection queues so a slow
//!   viewer gets recent frames and never holds up the others.
//! - [`Problem`]: RFC 9457 problem details, the body of every error.
//!
#![doc = include_str!("../docs/things.md")]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod action;
#[cfg(feature = "client")]
pub mod client;
mod error;
mod layout;
mod openapi;
pub mod property;
mod schema;
mod server;
pub mod stream;
pub mod td;
mod thing;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use action::{ActionContext, Blob, Cancelled};
pub use error::{InvalidParam, PROBLEM_JSON, Problem};
pub use labthings_macros::{Thing, data, thing_actions};
pub use property::{Property, PropertyError, SetError};
pub use server::{
    Auth, CommandLine, ConfigError, ConnectionOptions, IntoShared, Role, Serve, ServerConfig,
    ServerError, ThingContext, ThingRegistry, ThingServer, ThingServerBuilder, run, serve,
    shutdown_signal,
};
pub use thing::{BoxError, PropertyDescriptor, StreamDescriptor, Thing, ThingDescriptor};

/// The derive that gives your own types a JSON Schema, so they can be property values.
pub use schemars::JsonSchema;
