//! [`ServerError`]: why a server could not be built or started.

use crate::thing::BoxError;

/// Why a server could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A Thing name is not a valid URL segment or is reserved.
    #[error("invalid Thing name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is not allowed.
        reason: String,
    },
    /// Two Things were given the same name.
    #[error("two Things are named {0:?}")]
    DuplicateName(String),
    /// A Thing (or one of its properties) was added to a server twice.
    #[error("a property of Thing {thing:?} already belongs to a server; each Thing is added once")]
    AlreadyAdded {
        /// The Thing.
        thing: String,
    },
    /// An allowed origin is not `scheme://host[:port]`.
    #[error(
        "invalid CORS origin {0:?}: expected scheme://host[:port], such as http://lab-ui.local:8080"
    )]
    InvalidOrigin(String),
    /// The access control configuration is unusable.
    #[error("invalid access control configuration: {0}")]
    InvalidAuth(String),
    /// Two affordances of a Thing (an action and a property, say) have the same name.
    #[error("Thing {thing:?} has two affordances named {affordance:?}")]
    DuplicateAffordance {
        /// The Thing.
        thing: String,
        /// The name used twice.
        affordance: String,
    },
    /// An affordance's name is not a valid URL segment, or is one the server uses under each
    /// Thing (`ws`). `#[derive(Thing)]` and `#[thing_actions]` refuse such names at compile
    /// time; this catches descriptors built by hand.
    #[error("Thing {thing:?} has an affordance named {affordance:?}: {reason}")]
    InvalidAffordanceName {
        /// The Thing.
        thing: String,
        /// The name.
        affordance: String,
        /// Why it is not allowed.
        reason: String,
    },
    /// The API prefix is not of the form `/segment/...`.
    #[error("invalid API prefix {0:?}: it must start with `/` and not end with one")]
    InvalidPrefix(String),
    /// The OpenAPI document could not be built.
    #[error("{0}")]
    OpenApi(String),
    /// A Thing's start hook failed.
    #[error("Thing {thing:?} failed to start: {error}")]
    Start {
        /// The Thing.
        thing: String,
        /// What its start hook said.
        error: BoxError,
    },
    /// The settings folder, or a Thing's settings file, cannot be used: it cannot be created
    /// or written, or the settings path is not a regular file (a folder, a FIFO).
    #[error("settings at {path} cannot be used: {reason}")]
    Settings {
        /// The folder or file.
        path: std::path::PathBuf,
        /// Why, with the system's error.
        reason: String,
    },
    /// Settings could not be saved when the server stopped: their newest values are lost.
    #[error("settings were not saved at shutdown: {}", .0.join("; "))]
    SettingsNotSaved(Vec<String>),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
