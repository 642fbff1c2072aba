//! Serving Things over HTTP.
//!
//! - [`ThingServer`]: the framework's server: Things, their routes, Thing Descriptions, the
//!   OpenAPI document and API browser, settings and lifecycle.
//! - [`serve`]: the HTTP/1.1 server underneath, usable with any axum router; it bounds what
//!   each connection queues so that live streams stay live.

mod actions;
mod affordances;
pub(crate) mod auth;
mod builder;
mod config;
mod metrics;
mod problems;
mod serve;
mod settings;
mod stall;
mod things;
mod ui;
mod ws;

pub(crate) use actions::invocation_schema;
pub use auth::{Auth, Role};
pub use builder::{IntoShared, ServerError, ThingServerBuilder};
pub use config::{CommandLine, ConfigError, ServerConfig, ThingContext, ThingRegistry, run};
pub use serve::{ConnectionOptions, Serve, serve};
pub use things::{ThingServer, shutdown_signal};
