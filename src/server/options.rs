//! [`ServerOptions`]: every option of a server, in one type that the builder, the configuration
//! file and the command line all set. A new option is added here once: a field with its
//! default and its documentation, and a builder method of the same name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::auth::Auth;
use crate::property::HistoryOptions;
use crate::serve::ConnectionOptions;

/// Where settings are kept unless a server is told otherwise: `settings` in the working
/// directory.
pub const DEFAULT_SETTINGS_FOLDER: &str = "settings";

/// Where data (recordings) is kept unless a server is told otherwise: `data` in the working
/// directory, beside [`DEFAULT_SETTINGS_FOLDER`].
pub const DEFAULT_DATA_FOLDER: &str = "data";

/// Every option of a [`ThingServer`](crate::ThingServer), with its default.
///
/// Each field is a key of the configuration file (beside `things`; durations in seconds) and a
/// method of [`ThingServerBuilder`](super::ThingServerBuilder) of the same name; the command
/// line sets the ones changed at the bench (`--help`). `labthings --config-schema` prints the
/// JSON Schema of the file, which is also kept in the repository as
/// `docs/config.schema.json`.
///
/// # Examples
///
/// ```
/// use labthings::server::{ServerConfig, ServerOptions};
///
/// let config = ServerConfig::from_json(
///     r#"{"things": {}, "api_prefix": "/api", "connection": {"write_timeout": 10}}"#,
/// )
/// .unwrap();
/// assert_eq!(config.options.api_prefix, "/api");
/// assert_eq!(config.options.connection.write_timeout.as_secs(), 10);
/// assert_eq!(ServerOptions::default().event_history, 256);
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerOptions {
    /// A prefix for every route, such as `/api/v3`. Default none.
    pub api_prefix: String,
    /// The application's name in `/openapi.json` (`info.title`), which code generators use
    /// for the client they make. Default `labthings`.
    pub title: Option<String>,
    /// The application's version in `/openapi.json` (`info.version`). Default: the labthings
    /// crate's version.
    pub version: Option<String>,
    /// What the application is, for `/openapi.json` (`info.description`, Markdown).
    pub description: Option<String>,
    /// Where settings are kept (`<folder>/<thing>/settings.json`); `null` keeps none, and
    /// `#[setting]`s are then lost at restart. Default `./settings`.
    pub settings_folder: Option<PathBuf>,
    /// Where actions keep data such as recordings; `null`: none, and actions that write files
    /// end in a clear error. Default `./data`.
    pub data_folder: Option<PathBuf>,
    /// The URL clients reach the server at (`https://lab.example/microscope/`), the `base` of
    /// Thing Descriptions. Its host is one of the server's names and its origin may use the
    /// API. Default: built from each request's `Host`.
    pub public_url: Option<String>,
    /// The web UI: `"built_in"` (default), `"none"`, or `{"folder": "path"}` for your own
    /// (`index.html` at `/`, the folder's `static/` at `/static/`).
    pub ui: Ui,
    /// Folders served beside the API, by URL path: `{"/data": "./data"}`.
    pub serve_folders: BTreeMap<String, PathBuf>,
    /// How long finished invocations (and their outputs) are kept, in seconds. Default 300.
    #[serde(deserialize_with = "crate::serve::seconds::deserialize")]
    #[schemars(with = "f64", range(min = 0))]
    pub invocation_retention: Duration,
    /// The most bytes the outputs of finished invocations may take in memory together
    /// (captured images, arrays, JSON). Past it the oldest outputs are dropped: their
    /// invocations stay, and their output links answer `410 Gone`. The newest output is
    /// always kept whole, and outputs kept in files (recordings) take nothing. Default 64 MiB.
    pub invocation_output_budget: usize,
    /// The most recordings (`record_<stream>` actions) running at once on the server: each
    /// holds a writer thread and three files. The next is refused with `503` and
    /// `Retry-After` until one ends. At least 1; default 4.
    #[schemars(range(min = 1))]
    pub max_recordings: usize,
    /// The most recordings of one stream running at once, refused likewise. At least 1;
    /// default 2.
    #[schemars(range(min = 1))]
    pub max_recordings_per_stream: usize,
    /// Property histories, by Thing and property name, overriding the `history` attribute:
    /// `{"stage": {"temperature": {"max_age": 600, "min_interval": 1}}}` (seconds; each key
    /// optional, see [`HistoryOptions`]). Default: what each property's attribute says.
    pub history: BTreeMap<String, BTreeMap<String, HistoryOptions>>,
    /// How many events, and how many property changes, each Thing keeps for Server-Sent
    /// Events subscribers that reconnect with `Last-Event-ID`. At least 1; default 256.
    #[schemars(range(min = 1))]
    pub event_history: usize,
    /// How often a quiet Server-Sent Events stream sends a comment line, in seconds, so that
    /// proxies do not close it. At least 0.01; default 15.
    #[serde(deserialize_with = "crate::serve::seconds::deserialize")]
    #[schemars(with = "f64", range(min = 0.01))]
    pub sse_heartbeat: Duration,
    /// How long a cancelled action may take to stop by itself before it is dropped, in
    /// seconds. Default 2.
    #[serde(deserialize_with = "crate::serve::seconds::deserialize")]
    #[schemars(with = "f64", range(min = 0))]
    pub cancellation_grace: Duration,
    /// Web origins (`scheme://host[:port]`) whose pages may use the API (CORS) and open its
    /// websockets. Default none: only the server's own pages.
    pub allow_origins: Vec<String>,
    /// Host names the server may be reached under when bound to a loopback address, besides
    /// `localhost` and IP addresses (`["microscope.lab"]`, or `["*"]` for any): the defence
    /// against DNS rebinding.
    pub allow_hosts: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-*` and `Forwarded` headers are believed: IP
    /// addresses or networks (`"127.0.0.1"`, `"10.0.0.0/8"`).
    pub trusted_proxies: Vec<String>,
    /// HTTPS: `{"cert": "cert.pem", "key": "key.pem"}`, or `{"self_signed": true}` for a
    /// certificate made once and kept in the settings folder. Needs the `tls` feature.
    /// Default: plain HTTP.
    pub tls: Option<TlsOptions>,
    /// Announce the server over mDNS as a `_wot._tcp` service (W3C WoT Discovery), on the
    /// interfaces it listens on only. Needs the `mdns` feature. Default off.
    pub discovery: bool,
    /// The `id` of the server's own Thing Description (`/.well-known/wot`): a URI. Default: a
    /// `urn:uuid:` made once and kept in the settings folder (`identity.json`).
    pub id: Option<String>,
    /// The `id` of each Thing's TD, by Thing name (`{"camera": "urn:lab:camera-1"}`): URIs.
    /// A Thing not named here gets a `urn:uuid:` made once and kept in the settings folder;
    /// with no settings folder, ids change at every start.
    pub thing_ids: BTreeMap<String, String>,
    /// Register every Thing with a W3C WoT Thing Description Directory:
    /// `{"url": "http://tdd.lab:5050", "ttl": 300, "token": "..."}`. Needs the `directory`
    /// feature. Default: no directory.
    pub directory: Option<DirectoryOptions>,
    /// The lab view (`/lab_view/`): other servers whose Things it shows, beside this server's and
    /// the directory's: `{"servers": ["http://stage.lab:5000/"]}`.
    pub lab: LabOptions,
    /// Access control: `{"tokens": [{"token": "...", "role": "read-write"}], "public_read":
    /// false}`. Default: every request is allowed.
    pub auth: Option<Auth>,
    /// Limits and timeouts of each connection.
    pub connection: ConnectionOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            api_prefix: String::new(),
            title: None,
            version: None,
            description: None,
            settings_folder: Some(PathBuf::from(DEFAULT_SETTINGS_FOLDER)),
            data_folder: Some(PathBuf::from(DEFAULT_DATA_FOLDER)),
            public_url: None,
            ui: Ui::BuiltIn,
            serve_folders: BTreeMap::new(),
            invocation_retention: Duration::from_secs(300),
            invocation_output_budget: 64 << 20,
            max_recordings: 4,
            max_recordings_per_stream: 2,
            history: BTreeMap::new(),
            event_history: 256,
            sse_heartbeat: super::sse::DEFAULT_HEARTBEAT,
            cancellation_grace: Duration::from_secs(2),
            allow_origins: Vec::new(),
            allow_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            tls: None,
            discovery: false,
            id: None,
            thing_ids: BTreeMap::new(),
            directory: None,
            lab: LabOptions::default(),
            auth: None,
            connection: ConnectionOptions::default(),
        }
    }
}

/// The web UI a server serves at `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Ui {
    /// The UI built into the binary.
    #[default]
    BuiltIn,
    /// Your own: `index.html` at `/`, and the folder's `static/` at `/static/` (the layout of
    /// this project's `static/`).
    Folder(PathBuf),
    /// No UI (an API-only server).
    None,
}

/// Registration with a W3C WoT Thing Description Directory (the `directory` key of a
/// configuration file).
///
/// At start the server registers each Thing's TD (`PUT <url>/things/<id>`, with absolute
/// links and `registration.ttl`), registers again every half `ttl`, and removes its entries
/// (`DELETE`) when it stops cleanly. A directory that is down never delays the server: it is
/// tried again with a growing pause (1 s to 60 s), logged once when it goes down and once when
/// it is back, and shown in `/metrics` (`labthings_directory_*`).
#[derive(Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DirectoryOptions {
    /// The directory's URL, where its `/things` is (`http://tdd.lab:5050`).
    pub url: String,
    /// How long the directory keeps an entry that is not registered again, in seconds (at
    /// least 2; default 300). The server registers again every half of it.
    #[serde(
        default = "DirectoryOptions::default_ttl",
        deserialize_with = "crate::serve::seconds::deserialize"
    )]
    #[schemars(with = "f64", range(min = 2))]
    pub ttl: Duration,
    /// A bearer token the directory asks for (`Authorization: Bearer ...`). Default none.
    /// `LABTHINGS_DIRECTORY_TOKEN` in the environment sets it too, out of sight of `ps`.
    #[serde(default)]
    pub token: Option<String>,
}

/// The token is a secret: it is never printed.
impl std::fmt::Debug for DirectoryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryOptions")
            .field("url", &self.url)
            .field("ttl", &self.ttl)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

impl DirectoryOptions {
    /// A directory at `url`, with the default ttl (300 s) and no token.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ttl: Self::default_ttl(),
            token: None,
        }
    }

    /// The same, with entries kept `ttl` by the directory.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same, with a bearer token for the directory.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    fn default_ttl() -> Duration {
        Duration::from_secs(300)
    }
}

/// What the lab view (`/lab_view/`) shows besides this server's Things and those of its directory
/// (the `lab` key of a configuration file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LabOptions {
    /// Other servers, by URL (`http://stage.lab:5000/`): the page reads each one's
    /// `/.well-known/wot`. Their `allow_origins` must list this server's origin.
    pub servers: Vec<String>,
}

impl LabOptions {
    /// A lab view of these servers.
    pub fn servers<I, S>(servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            servers: servers.into_iter().map(Into::into).collect(),
        }
    }
}

/// Where a server's HTTPS certificate comes from (the `tls` key of a configuration file).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsOptions {
    /// The certificate chain, PEM (the server's certificate first).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key, PEM.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A self-signed certificate, made on first start and kept in `<settings folder>/tls/`.
    #[serde(default)]
    pub self_signed: bool,
}

impl TlsOptions {
    /// A certificate and key from PEM files.
    pub fn files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: Some(cert.into()),
            key: Some(key.into()),
            self_signed: false,
        }
    }

    /// A self-signed certificate kept in the settings folder.
    pub fn self_signed() -> Self {
        Self {
            self_signed: true,
            ..Self::default()
        }
    }
}
