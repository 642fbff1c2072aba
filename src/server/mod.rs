//! Serving Things over HTTP.
//!
//! - [`ThingServer`]: the framework's server: Things, their routes, Thing Descriptions, the
//!   OpenAPI document and API browser, settings and lifecycle.
//! - [`serve`](crate::serve()): the HTTP/1.1 server underneath (`src/serve/`), usable with any
//!   axum router; it bounds what each connection queues so that live streams stay live.
//!
//! A map, for finding things:
//!
//! | module | what it holds |
//! |---|---|
//! | `builder` | [`ThingServerBuilder`] and `build()`, which reads as its steps |
//! | `assemble` | one Thing: names checked, properties bound, settings loaded, each affordance served |
//! | `affordance/` | one file per kind of affordance (`property`, `action`, `stream`, `event`): routes, handlers, OpenAPI operations, TD entries |
//! | `ws` | the observation websocket of each Thing |
//! | `sse` | Server-Sent Events from a Thing's event log: ids, resume, lost events, heartbeats |
//! | `index` | Thing Descriptions: `/{thing}/`, `/things/`, `/thing_descriptions/` |
//! | `invocations` | `/action_invocations/...` and `/blob/{id}` |
//! | `api_docs` | `/openapi.json` and the API browser at `/docs/` |
//! | `ui` | the web UI and served folders |
//! | `metrics`, `auth`, `problems` | `/metrics` and the request log; bearer tokens; problem JSON for every error |
//! | `route_table` | the one way routes are added: what is served is recorded beside what is documented |
//! | `lifecycle` | [`ThingServer`]: start, serve, shut down, stop, save |
//! | `config`, `settings`, `base`, `error` | configuration files and the command line; settings files; base URLs; [`ServerError`] |
//!
//! Every URL is spelled in `crate::layout`.

mod affordance;
mod api_docs;
mod assemble;
pub(crate) mod auth;
mod base;
mod builder;
#[cfg(feature = "cli")]
mod cli;
mod config;
mod discovery;
mod error;
mod folder;
mod forwarded;
mod hosts;
mod https;
mod index;
mod invocations;
mod lifecycle;
#[cfg(feature = "mdns")]
mod mdns;
mod metrics;
mod problems;
mod route_table;
mod settings;
mod sse;
mod terminal_log;
mod ui;
mod ws;

pub use auth::{Auth, Role};
pub use builder::{DEFAULT_DATA_FOLDER, DEFAULT_SETTINGS_FOLDER, IntoShared, ThingServerBuilder};
#[cfg(feature = "cli")]
pub use cli::{CommandLine, run, run_with};
pub use config::{ConfigError, ServerConfig, ThingContext, ThingRegistry};
pub use error::ServerError;
pub use https::TlsSetting;
pub use lifecycle::{ThingServer, shutdown_signal};
