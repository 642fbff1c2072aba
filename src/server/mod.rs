//! Serving Things over HTTP.
//!
//! - [`ThingServer`]: the framework's server: Things, their routes, Thing Descriptions, the
//!   OpenAPI document and API browser, settings and lifecycle.
//! - [`serve`](crate::serve::serve()): the HTTP/1.1 server underneath (`src/serve/`), usable with any
//!   axum router; it bounds what each connection queues so that live streams stay live.
//! - [`ServerOptions`]: every option, set by the builder, a configuration file
//!   ([`ServerConfig`]) or the command line (`CommandLine`, feature `cli`) under the same names.
//!
//! What each file of this folder holds is in the one map of the code, `docs/architecture.md`
//! in the repository.
//!
//! Every URL is spelled in `crate::layout`.

mod affordance;
mod api_docs;
mod assemble;
pub(crate) mod auth;
mod base;
mod builder;
mod clear_fault;
#[cfg(feature = "cli")]
mod cli;
mod config;
#[cfg(feature = "directory")]
mod directory;
mod discovery;
mod error;
mod folder;
mod forwarded;
mod history;
mod hosts;
#[cfg(feature = "tls")]
mod https;
mod identity;
mod index;
mod invocations;
mod kwargs;
mod lab;
mod lifecycle;
#[cfg(feature = "mdns")]
mod mdns;
mod metrics;
mod negotiate;
mod options;
mod problems;
mod route_table;
mod settings;
mod sse;
mod stop_all;
mod strict;
mod terminal_log;
#[cfg(test)]
mod tests;
mod ui;
mod ws;

pub use auth::{Auth, Role};
pub use builder::{IntoShared, ThingServerBuilder};
#[cfg(feature = "cli")]
pub use cli::{CommandLine, run, run_with};
pub use config::{ConfigError, ServerConfig, ThingContext, ThingRegistry};
pub use error::ServerError;

pub use lifecycle::{ThingServer, shutdown_signal};
pub use options::{
    DEFAULT_DATA_FOLDER, DEFAULT_SETTINGS_FOLDER, DirectoryOptions, LabOptions, ServerOptions,
    TlsOptions, Ui,
};
