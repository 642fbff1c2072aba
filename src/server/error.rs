//! [`ServerError`]: why a server could not be built or started.

use crate::thing::BoxError;

/// Why a server could not be built or started.
///
/// Its `Debug` form is its message (with the error it comes from), so that a `main` returning
/// `Result<(), ServerError>` prints a sentence, not a structure.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address to listen on cannot be used (most often: another program listens there).
    #[error("cannot listen on {address}: {error}{}", bind_hint(.error))]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
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
    /// An entry of `trusted_proxies` is not an IP address or network.
    #[error("{0}")]
    InvalidProxy(String),
    /// Discovery was asked for in a binary built without the `mdns` feature.
    #[error("discovery: {0}")]
    Discovery(String),
    /// A Thing Description id in the configuration is unusable: not a URI, given twice, or
    /// for a Thing the server does not have.
    #[error("ids: {0}")]
    InvalidId(String),
    /// The directory or lab view configuration is unusable: a URL that is not `http(s)://`,
    /// or a binary built without the `directory` feature.
    #[error("directory: {0}")]
    Directory(String),
    /// HTTPS cannot be set up: a certificate or key that cannot be read or used, a
    /// self-signed certificate that cannot be kept, or a binary built without the `tls` feature.
    #[error("HTTPS: {0}")]
    Tls(String),
    /// The `history` option names a Thing or a property the server does not have.
    #[error("history: {0}")]
    History(String),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl std::fmt::Debug for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.to_string();
        f.write_str(&message)?;
        let mut source = std::error::Error::source(self);
        while let Some(error) = source {
            // Most messages quote their cause already.
            let cause = error.to_string();
            if !message.contains(&cause) {
                write!(f, "\n  caused by: {cause}")?;
            }
            source = error.source();
        }
        Ok(())
    }
}

/// What to do about a bind error.
fn bind_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another program (or another server) is using this port. Choose another with \
             `--port` (or the address given to `ThingServer::serve`). On macOS, port 5000 is \
             taken by the AirPlay Receiver."
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; this machine has no such address. Use 127.0.0.1 (this machine only) or 0.0.0.0 \
             (every network) with `--host`."
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need extra rights. Choose a port above 1024 with `--port`."
        }
        _ => "",
    }
}
