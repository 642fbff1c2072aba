//! Server configuration files and the command line of a labthings binary.
//!
//! The file is JSON in the shape labthings-fastapi uses, where it fits:
//!
//! ```json
//! {
//!   "things": {
//!     "stage": "simulated_stage",
//!     "camera": {
//!       "class": "simulated_camera",
//!       "kwargs": {"fps": 15},
//!       "thing_slots": {"stage": "stage"}
//!     }
//!   },
//!   "settings_folder": "./settings",
//!   "api_prefix": ""
//! }
//! ```
//!
//! Where labthings-fastapi imports a Python class, a labthings binary names a Thing type it
//! registered in a [`ThingRegistry`]; `kwargs` are deserialised into that type's arguments, and
//! `thing_slots` say which other Thing fills each of its slots (see [`ThingContext::slot`]).

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::builder::ThingServerBuilder;
use super::error::ServerError;
use super::https::TlsSetting;
use super::lifecycle::ThingServer;
use crate::thing::{BoxError, Thing};

/// A server configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The Things, by name, in the order they are created and started.
    pub things: Map<String, Value>,
    /// Where settings are kept (`<folder>/<thing>/settings.json`). Left out: `./settings`
    /// ([`DEFAULT_SETTINGS_FOLDER`](crate::DEFAULT_SETTINGS_FOLDER)); `null`: not kept.
    #[serde(
        default = "default_settings_folder",
        deserialize_with = "folder_or_null"
    )]
    pub settings_folder: Option<PathBuf>,
    /// Where actions keep data such as recordings. Left out: `./data`
    /// ([`DEFAULT_DATA_FOLDER`](crate::DEFAULT_DATA_FOLDER)); `null`: none.
    #[serde(default = "default_data_folder", deserialize_with = "folder_or_null")]
    pub data_folder: Option<PathBuf>,
    /// A prefix for every route, such as `/api/v3`.
    #[serde(default)]
    pub api_prefix: String,
    /// The application's name in `/openapi.json` ([`ThingServerBuilder::title`]).
    #[serde(default)]
    pub title: Option<String>,
    /// The application's version in `/openapi.json` ([`ThingServerBuilder::version`]).
    #[serde(default)]
    pub version: Option<String>,
    /// What the application is, in `/openapi.json` ([`ThingServerBuilder::description`]).
    #[serde(default)]
    pub description: Option<String>,
    /// Access control: `{"tokens": [{"token": "...", "role": "read-write" | "read-only"}],
    /// "public_read": false}`; none: every request is allowed. See [`Auth`](crate::Auth).
    #[serde(default)]
    pub auth: Option<crate::Auth>,
    /// Web origins (`scheme://host[:port]`) whose pages may call this server (CORS) and open
    /// its websockets.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Host names the server may be reached under when bound to a loopback address, besides
    /// `localhost` and IP addresses (`["microscope.lab"]`, or `["*"]` for any): the defence
    /// against DNS rebinding. See [`ThingServerBuilder::allow_hosts`].
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// HTTPS: `{"cert": "cert.pem", "key": "key.pem"}` (PEM files), or `{"self_signed": true}`
    /// for a certificate made once and kept in the settings folder. Needs the `tls` feature.
    /// Left out: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsSetting>,
    /// Reverse proxies whose `X-Forwarded-Proto`, `-Host`, `-Prefix` and `Forwarded` headers
    /// are believed: IP addresses or networks (`"127.0.0.1"`, `"10.0.0.0/8"`). See
    /// [`ThingServerBuilder::trusted_proxies`].
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Announce the server over mDNS as a `_wot._tcp` service (W3C WoT Discovery), on the
    /// interfaces it listens on only. Off by default. Needs the `mdns` feature.
    #[serde(default)]
    pub discovery: bool,
}

/// One entry of `things`, in its long form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThingEntry {
    #[serde(alias = "cls", rename = "class")]
    type_name: String,
    #[serde(default)]
    kwargs: Value,
    #[serde(default)]
    thing_slots: HashMap<String, String>,
}

/// Why a configuration could not be loaded or turned into a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The JSON is not a configuration.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A Thing names a type the binary does not know.
    #[error(
        "Thing {thing:?} has type {type_name:?}, which this program does not provide; it provides {known}"
    )]
    UnknownType {
        /// The Thing.
        thing: String,
        /// The type it asked for.
        type_name: String,
        /// The registered type names.
        known: String,
    },
    /// A Thing's factory failed: bad `kwargs`, a missing slot, or hardware it could not find.
    #[error("cannot create Thing {thing:?}: {error}")]
    Create {
        /// The Thing.
        thing: String,
        /// What its factory said.
        error: BoxError,
    },
    /// The server could not be built from the Things.
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl ServerConfig {
    /// Parses a configuration from JSON text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the offending field.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = labthings::ServerConfig::from_json(r#"{"things": {"stage": "simulated_stage"}}"#)
    ///     .unwrap();
    /// assert_eq!(config.things.len(), 1);
    /// assert!(labthings::ServerConfig::from_json(r#"{"thing": {}}"#).is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let path = error.path().to_string();
            ConfigError::Invalid(if path == "." {
                error.inner().to_string()
            } else {
                format!("at `{path}`: {}", error.inner())
            })
        })
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] or [`ConfigError::Invalid`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_json(&text)
    }
}

type Factory = Box<
    dyn Fn(&str, Value, &ThingContext<'_>) -> Result<(Arc<dyn Any + Send + Sync>, AddFn), BoxError>
        + Send
        + Sync,
>;
type AddFn = Box<dyn FnOnce(ThingServerBuilder) -> ThingServerBuilder>;

/// The Thing types a binary can create from a configuration file, by name.
///
/// # Examples
///
/// ```
/// use labthings::{Property, Thing, ThingRegistry};
///
/// #[derive(Thing)]
/// struct Lamp {
///     #[property]
///     on: Property<bool>,
/// }
///
/// #[derive(serde::Deserialize)]
/// struct LampArgs {
///     #[serde(default)]
///     on: bool,
/// }
///
/// let registry = ThingRegistry::new().register("lamp", |args: LampArgs, _| {
///     Ok(Lamp { on: Property::new(args.on) })
/// });
/// let config = labthings::ServerConfig::from_json(
///     r#"{"things": {"desk_lamp": {"class": "lamp", "kwargs": {"on": true}}}}"#,
/// )
/// .unwrap();
/// let server = registry.builder(&config).unwrap().build().unwrap();
/// assert!(server.routes().iter().any(|(_, path)| path == "/desk_lamp/on"));
/// ```
#[derive(Default)]
pub struct ThingRegistry {
    factories: Vec<(String, Factory)>,
}

impl std::fmt::Debug for ThingRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.factories.iter().map(|(name, _)| name))
            .finish()
    }
}

/// What a factory sees while a configuration is turned into Things: the Things made so far.
pub struct ThingContext<'a> {
    made: &'a [(String, Arc<dyn Any + Send + Sync>)],
    slots: &'a HashMap<String, String>,
}

impl std::fmt::Debug for ThingContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThingContext")
            .field(
                "made",
                &self.made.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("slots", self.slots)
            .finish()
    }
}

impl ThingContext<'_> {
    /// The Thing that fills slot `slot`: the one `thing_slots` names for it, or else the only
    /// Thing of type `T` made so far. This is how a camera gets its stage without global state.
    ///
    /// # Errors
    ///
    /// If the named Thing does not exist (yet: Things are made in file order) or is not a `T`,
    /// or if no name is given and there is not exactly one `T`.
    pub fn slot<T: Thing>(&self, slot: &str) -> Result<Arc<T>, BoxError> {
        let wanted = std::any::type_name::<T>();
        if let Some(name) = self.slots.get(slot) {
            let (_, thing) = self
                .made
                .iter()
                .find(|(made, _)| made == name)
                .ok_or_else(|| {
                    format!("slot {slot:?} names Thing {name:?}, which is not defined before it")
                })?;
            return thing.clone().downcast::<T>().map_err(|_| {
                format!("slot {slot:?} needs a {wanted}, but {name:?} is not one").into()
            });
        }
        let mut candidates = self
            .made
            .iter()
            .filter_map(|(name, thing)| Some((name, thing.clone().downcast::<T>().ok()?)));
        match (candidates.next(), candidates.next()) {
            (Some((_, thing)), None) => Ok(thing),
            (None, _) => {
                Err(format!("slot {slot:?} needs a {wanted}, and none is defined before it").into())
            }
            (Some((first, _)), Some((second, _))) => Err(format!(
                "slot {slot:?} could be {first:?} or {second:?}; name one in `thing_slots`"
            )
            .into()),
        }
    }
}

impl ThingRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a Thing type under `type_name`: `make` receives the Thing's `kwargs`
    /// (deserialised into `A`; `{}` when none are given) and a [`ThingContext`] to fill slots.
    pub fn register<T, A, F>(mut self, type_name: impl Into<String>, make: F) -> Self
    where
        T: Thing,
        A: DeserializeOwned,
        F: Fn(A, &ThingContext<'_>) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        let factory: Factory = Box::new(move |name, kwargs, context| {
            let kwargs = if kwargs.is_null() {
                Value::Object(Map::new())
            } else {
                kwargs
            };
            let args: A = serde_path_to_error::deserialize(kwargs).map_err(|error| {
                format!("invalid kwargs at `{}`: {}", error.path(), error.inner())
            })?;
            let thing = Arc::new(make(args, context)?);
            let name = name.to_owned();
            let add: AddFn = Box::new({
                let thing = thing.clone();
                move |builder: ThingServerBuilder| builder.add_thing(name, thing)
            });
            Ok((thing as Arc<dyn Any + Send + Sync>, add))
        });
        self.factories.push((type_name.into(), factory));
        self
    }

    /// The registered type names.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.factories.iter().map(|(name, _)| name.as_str())
    }

    /// Makes every Thing of `config`, in order, and a server builder with them, the settings
    /// folder and the API prefix.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownType`], [`ConfigError::Invalid`] for a malformed entry, or
    /// [`ConfigError::Create`] from a factory.
    pub fn builder(&self, config: &ServerConfig) -> Result<ThingServerBuilder, ConfigError> {
        let mut builder = ThingServer::builder().api_prefix(config.api_prefix.clone());
        builder = match &config.settings_folder {
            Some(folder) => builder.settings_folder(folder),
            None => builder.without_settings_folder(),
        };
        builder = match &config.data_folder {
            Some(folder) => builder.data_folder(folder),
            None => builder.without_data_folder(),
        };
        if let Some(auth) = &config.auth {
            builder = builder.auth(auth.clone());
        }
        if !config.allow_origins.is_empty() {
            builder = builder.allow_origins(&config.allow_origins);
        }
        builder = builder.allow_hosts(config.allow_hosts.iter().cloned());
        builder = builder.trusted_proxies(config.trusted_proxies.iter().cloned());
        builder = builder.discovery(config.discovery);
        if let Some(tls) = &config.tls {
            builder = builder.tls_setting(tls.clone());
        }
        if let Some(title) = &config.title {
            builder = builder.title(title);
        }
        if let Some(version) = &config.version {
            builder = builder.version(version);
        }
        if let Some(description) = &config.description {
            builder = builder.description(description);
        }
        let mut made = Vec::new();
        for (name, entry) in &config.things {
            let entry: ThingEntry = match entry {
                Value::String(type_name) => ThingEntry {
                    type_name: type_name.clone(),
                    kwargs: Value::Null,
                    thing_slots: HashMap::new(),
                },
                other => serde_json::from_value(other.clone())
                    .map_err(|error| ConfigError::Invalid(format!("Thing {name:?}: {error}")))?,
            };
            let (_, factory) = self
                .factories
                .iter()
                .find(|(type_name, _)| *type_name == entry.type_name)
                .ok_or_else(|| ConfigError::UnknownType {
                    thing: name.clone(),
                    type_name: entry.type_name.clone(),
                    known: self.type_names().collect::<Vec<_>>().join(", "),
                })?;
            let context = ThingContext {
                made: &made,
                slots: &entry.thing_slots,
            };
            let (thing, add) =
                factory(name, entry.kwargs, &context).map_err(|error| ConfigError::Create {
                    thing: name.clone(),
                    error,
                })?;
            made.push((name.clone(), thing));
            builder = add(builder);
        }
        Ok(builder)
    }
}

fn default_data_folder() -> Option<PathBuf> {
    Some(PathBuf::from(super::builder::DEFAULT_DATA_FOLDER))
}

fn default_settings_folder() -> Option<PathBuf> {
    Some(PathBuf::from(super::builder::DEFAULT_SETTINGS_FOLDER))
}

/// A folder, or `null` for none (a key left out takes [`default_settings_folder`]).
fn folder_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PathBuf>, D::Error> {
    Option::<PathBuf>::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_types_are_named() {
        let error = ServerConfig::from_json(r#"{"things": {}, "setting_folder": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("setting_folder"), "{error}");
        let error = ServerConfig::from_json(r#"{"things": {"a": 1}, "api_prefix": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("api_prefix"), "{error}");
    }
}
