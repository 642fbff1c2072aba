//! # labthings
//!
//! A web framework for laboratory instruments. Describe a camera, stage or spectrometer in Rust
//! and serve it over HTTP with the protocol of
//! [labthings-fastapi](https://github.com/labthings/labthings-fastapi), so existing LabThings
//! clients keep working.
//!
//! This release holds the live-stream core:
//!
//! - [`stream::MjpegStream`]: a timestamped ring buffer of JPEG frames that a camera thread adds
//!   to and any number of viewers read, each skipping to the newest frame when it falls behind;
//! - [`stream::MjpegStreamResponse`] and [`stream::routes`]: the stream, a snapshot and a viewer
//!   page over HTTP, on any axum router;
//! - [`serve`]: an HTTP server that bounds what each connection queues, so a slow viewer gets
//!   recent frames and never holds up the others;
//! - [`Problem`]: RFC 9457 problem details, the body of every error.
//!
//! # Examples
//!
//! ```no_run
//! use labthings::stream::{self, MjpegStream};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let camera = MjpegStream::new();
//! let app = axum::Router::new().merge(stream::routes("/camera/mjpeg_stream", camera.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! labthings::serve(listener, app).await
//! # }
//! ```

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod error;
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

pub use error::{InvalidParam, PROBLEM_JSON, Problem};
pub use labthings_macros::{Thing, data};
pub use property::{Property, PropertyError, SetError};
pub use server::{
    CommandLine, ConfigError, ConnectionOptions, IntoShared, Serve, ServerConfig, ServerError,
    ThingContext, ThingRegistry, ThingServer, ThingServerBuilder, run, serve, shutdown_signal,
};
pub use thing::{BoxError, PropertyDescriptor, StreamDescriptor, Thing, ThingDescriptor};

/// The derive that gives your own types a JSON Schema, so they can be property values.
pub use schemars::JsonSchema;
