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
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `server` | yes | the framework: [`Thing`], [`Property`], actions, Thing Descriptions, OpenAPI, [`ThingServer`] |
//! | `swagger-ui` | yes | the API browser at `/docs/` (Swagger UI served from the binary, works offline) |
//! | `cli` | yes | [`run`] and [`server::CommandLine`]: `--config`, `--host`, `--port` |
//! | `log` | yes | a terminal log (`info`, or `RUST_LOG`) for servers whose application installs no `tracing` subscriber |
//! | `pipeline` | no | `stream::FramePipeline`: raw frames in, JPEG encoded on worker threads only while watched |
//! | `tiff` | no | TIFF for `NdArray` outputs, beside `.npy` |
//! | `mdns` | no | announcing the server over mDNS as `_wot._tcp` (`--discovery`) |
//! | `tls` | no | HTTPS in the server (rustls), HTTP/2 by ALPN, self-signed certificates: [`server::TlsOptions`], [`serve::TlsCertificate`] |
//! | `client` | no | `labthings::client`: `MjpegClient`, `ThingClient`, the multipart parser |
//!
//! With `default-features = false` the crate is [`stream`] and [`serve`] alone: live MJPEG
//! streams for any axum router, without the framework's dependencies.
//!
#![cfg_attr(feature = "server", doc = include_str!("../docs/things.md"))]

#[cfg(feature = "server")]
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
#[cfg(feature = "server")]
pub mod action;
#[cfg(feature = "server")]
mod bound;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod event;
#[cfg(all(feature = "aravis", target_os = "linux"))]
pub mod genicam;
#[cfg(feature = "server")]
pub mod health;
mod layout;
#[cfg(any(feature = "server", feature = "client"))]
mod observation;
#[cfg(feature = "server")]
mod openapi;
#[cfg(feature = "server")]
pub mod prelude;
pub mod problem;
#[cfg(feature = "server")]
pub mod property;
#[cfg(feature = "server")]
pub mod record;
#[cfg(feature = "server")]
mod schema;
pub mod serve;
#[cfg(feature = "server")]
pub mod server;
pub mod stream;
#[cfg(feature = "server")]
pub mod td;
#[cfg(feature = "server")]
pub mod thing;
#[cfg(all(feature = "v4l2", target_os = "linux"))]
pub mod v4l2;
#[cfg(all(any(feature = "v4l2", feature = "aravis"), target_os = "linux"))]
mod worker;

// The derive's expansions name `::labthings`; this lets the crate derive its own Things (the
// V4L2 camera, and the unit tests of the server).
#[cfg(any(
    all(feature = "server", test),
    all(feature = "v4l2", target_os = "linux"),
    all(feature = "aravis", target_os = "linux")
))]
extern crate self as labthings;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "server", feature = "client"))]
pub struct ReadmeDoctests;

// The crate root: what a Thing author writes every day. Everything else is in the module named
// for what it is; `prelude` brings the everyday names in one line.
pub use problem::Problem;

#[cfg(feature = "server")]
pub use action::{ActionContext, Blob, Cancelled, NdArray};
#[cfg(feature = "server")]
pub use event::Event;
#[cfg(feature = "server")]
pub use labthings_macros::{Thing, data, thing_actions};
#[cfg(feature = "server")]
pub use property::Property;
#[cfg(feature = "server")]
pub use server::ThingServer;
#[cfg(feature = "cli")]
pub use server::run;
#[cfg(feature = "server")]
pub use thing::Thing;

/// The derive that gives your own types a JSON Schema, so they can be property values.
#[cfg(feature = "server")]
pub use schemars::JsonSchema;
