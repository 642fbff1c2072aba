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

use schemars::JsonSchema;

use super::builder::ThingServerBuilder;
use super::error::ServerError;
use super::lifecycle::ThingServer;
use super::options::ServerOptions;
use super::{kwargs, strict};
use crate::thing::{BoxError, Thing};

/// A server configuration file: the Things to make, and the server's [`ServerOptions`].
///
/// Read strictly: an unknown key is an error naming the nearest valid one, and a value of the
/// wrong type names its key and the type expected. `labthings --config-schema` prints the JSON
/// Schema of the file ([`ServerConfig::json_schema`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The Things, by name, in the order they are created and started: each the name of a
    /// registered type, or `{"class": type, "kwargs": {...}, "thing_slots": {...}}`.
    pub things: Map<String, Value>,
    /// Every other key of the file.
    pub options: ServerOptions,
}

/// The whole file, for its JSON Schema only (it is read by [`ServerConfig::from_json`]).
#[derive(JsonSchema)]
#[schemars(
    title = "labthings configuration file",
    description = "The Things a labthings server makes, and its options (durations in seconds).",
    extend("additionalProperties" = false)
)]
#[allow(dead_code)]
struct ConfigFile {
    /// The Things, by name, in the order they are created and started.
    things: std::collections::BTreeMap<String, ThingSchema>,
    #[serde(flatten)]
    options: ServerOptions,
}

/// One Thing of the file: a registered type's name, or its long form.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ThingSchema {
    /// A registered type's name, made with no arguments.
    TypeName(String),
    /// The long form.
    Entry(ThingEntry),
}

/// One entry of `things`, in its long form.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ThingEntry {
    /// The registered type's name.
    #[serde(default)]
    class: Option<String>,
    /// The same, under the name older labthings-fastapi files use.
    #[serde(default)]
    cls: Option<String>,
    /// The type's arguments; unknown ones are an error.
    #[serde(default)]
    kwargs: Value,
    /// Which Thing fills each of its slots, by name.
    #[serde(default)]
    thing_slots: HashMap<String, String>,
}

/// Why a configuration could not be loaded or turned into a server.
///
/// Its `Debug` form is its message, so that a `main` returning `Result<(), ConfigError>` (or
/// any error it converts into) prints a sentence, not a structure.
#[derive(thiserror::Error)]
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
    /// The file is not JSON: where it stops being JSON.
    #[error("{path}: not JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// The file (`<text>` for text not read from a file).
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON is not a configuration: an unknown key, or a value of the wrong type.
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

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl ServerConfig {
    /// Parses a configuration from JSON text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] for text that is not JSON; [`ConfigError::Invalid`] naming the
    /// offending key: an unknown one with the nearest valid key, or one whose value has the
    /// wrong type with the type expected.
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::server::ServerConfig;
    ///
    /// let config = ServerConfig::from_json(r#"{"things": {"stage": "simulated_stage"}}"#).unwrap();
    /// assert_eq!(config.things.len(), 1);
    /// let error = ServerConfig::from_json(r#"{"things": {}, "setings_folder": "x"}"#).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "invalid configuration: unknown key `setings_folder`; did you mean `settings_folder`?"
    /// );
    /// ```
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, Path::new("<text>"))
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], [`ConfigError::Syntax`] or [`ConfigError::Invalid`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// The JSON Schema (2020-12) of a configuration file, generated from [`ServerOptions`]:
    /// what `labthings --config-schema` prints, and `docs/config.schema.json` in the
    /// repository.
    pub fn json_schema() -> Value {
        serde_json::to_value(schemars::schema_for!(ConfigFile)).expect("a schema is JSON")
    }

    fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|error| ConfigError::Syntax {
            path: path.to_owned(),
            line: error.line(),
            column: error.column(),
            message: syntax_message(&error),
        })?;
        if let Some(unknown) = strict::unknown_key(&value, &Self::json_schema()) {
            return Err(ConfigError::Invalid(unknown.to_string()));
        }
        let Value::Object(mut object) = value else {
            return Err(ConfigError::Invalid(
                "expected an object with `things` and the server's options".into(),
            ));
        };
        let things = match object.remove("things") {
            Some(Value::Object(things)) => things,
            Some(_) => return Err(ConfigError::Invalid("`things`: expected an object".into())),
            None => return Err(ConfigError::Invalid("missing key `things`".into())),
        };
        let options = serde_path_to_error::deserialize(Value::Object(object)).map_err(|error| {
            let path = error.path().to_string();
            ConfigError::Invalid(format!(
                "`{path}`: {}",
                strict::plain(&error.inner().to_string())
            ))
        })?;
        Ok(Self { things, options })
    }
}

/// A JSON syntax error's message without its position (given apart).
fn syntax_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => message,
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
/// use labthings::{Property, Thing, server::ThingRegistry};
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
/// let config = labthings::server::ServerConfig::from_json(
///     r#"{"things": {"desk_lamp": {"class": "lamp", "kwargs": {"on": true}}}}"#,
/// )
/// .unwrap();
/// let server = registry
///     .builder(&config)
///     .unwrap()
/// #   .without_settings_folder()
///     .build()
///     .unwrap();
/// assert!(server.openapi()["paths"]["/desk_lamp/on"].is_object());
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
            let args: A = kwargs::deserialize(kwargs)?;
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

    /// Makes every Thing of `config`, in order, and a server builder with them and the
    /// configuration's options.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownType`], [`ConfigError::Invalid`] for a malformed entry, or
    /// [`ConfigError::Create`] from a factory.
    pub fn builder(&self, config: &ServerConfig) -> Result<ThingServerBuilder, ConfigError> {
        let mut builder = ThingServer::builder().options(config.options.clone());
        let mut made = Vec::new();
        for (name, entry) in &config.things {
            let entry: ThingEntry = match entry {
                Value::String(type_name) => ThingEntry {
                    class: Some(type_name.clone()),
                    cls: None,
                    kwargs: Value::Null,
                    thing_slots: HashMap::new(),
                },
                other => serde_json::from_value(other.clone()).map_err(|error| {
                    ConfigError::Invalid(format!(
                        "Thing {name:?}: {}",
                        strict::plain(&error.to_string())
                    ))
                })?,
            };
            let Some(type_name) = entry.class.or(entry.cls) else {
                return Err(ConfigError::Invalid(format!(
                    "Thing {name:?}: missing key `class` (the type to make)"
                )));
            };
            let (_, factory) = self
                .factories
                .iter()
                .find(|(registered, _)| *registered == type_name)
                .ok_or_else(|| ConfigError::UnknownType {
                    thing: name.clone(),
                    type_name: type_name.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_nearest_valid_one_at_any_depth() {
        let error = ServerConfig::from_json(r#"{"things": {}, "setting_folder": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean `settings_folder`"), "{error}");
        let error = ServerConfig::from_json(r#"{"things": {}, "connection": {"write_timout": 3}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`write_timout` in `connection`; did you mean `write_timeout`"),
            "{error}"
        );
        let error = ServerConfig::from_json(r#"{"things": {"cam": {"class": "c", "kwarg": {}}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("in `things.cam`; did you mean `kwargs`"),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_the_type_expected() {
        let error = ServerConfig::from_json(r#"{"things": {}, "event_history": "many"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid configuration: `event_history`: invalid type: string \"many\", expected a whole number, at least 0"
        );
        let error =
            ServerConfig::from_json(r#"{"things": {}, "connection": {"write_timeout": -1}}"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("`connection.write_timeout`"), "{error}");
        assert!(error.contains("seconds, at least 0"), "{error}");
        assert!(
            ServerConfig::from_json(r#"{"api_prefix": ""}"#)
                .unwrap_err()
                .to_string()
                .contains("missing key `things`")
        );
    }

    #[test]
    fn a_syntax_error_names_the_file_line_and_column_and_debug_is_display() {
        let error = ServerConfig::from_json("{\n  \"things\": {},\n  oops\n}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "<text>: not JSON at line 3, column 3: key must be a string"
        );
        assert_eq!(format!("{error:?}"), error.to_string());
    }

    #[test]
    fn the_labthings_fastapi_shape_loads() {
        let config = ServerConfig::from_json(
            r#"{"things": {"stage": "simulated_stage",
                "camera": {"cls": "simulated_camera", "kwargs": {"fps": 15}, "thing_slots": {"stage": "stage"}}},
                "settings_folder": "./settings", "api_prefix": ""}"#,
        )
        .unwrap();
        assert_eq!(config.things.len(), 2);
        assert_eq!(
            config.options.settings_folder,
            Some(PathBuf::from("./settings"))
        );
    }

    #[test]
    fn every_option_is_in_the_file_and_null_folders_mean_none() {
        let config = ServerConfig::from_json(
            r#"{"things": {}, "api_prefix": "/api", "title": "t", "version": "1", "description": "d",
                "settings_folder": null, "data_folder": null, "public_url": "http://lab.example/",
                "ui": {"folder": "ui"}, "serve_folders": {"/data": "data"},
                "invocation_retention": 60, "event_history": 10, "sse_heartbeat": 0.5,
                "cancellation_grace": 1, "allow_origins": ["http://a.example"],
                "allow_hosts": ["lab"], "trusted_proxies": ["127.0.0.1"],
                "tls": {"self_signed": true}, "discovery": true,
                "auth": {"tokens": [{"token": "t", "role": "read-only"}]},
                "connection": {"max_connections": null, "tcp_keepalive": null, "write_timeout": 10}}"#,
        )
        .unwrap();
        let options = &config.options;
        assert_eq!(options.settings_folder, None);
        assert_eq!(
            options.ui,
            super::super::options::Ui::Folder(PathBuf::from("ui"))
        );
        assert_eq!(options.sse_heartbeat, std::time::Duration::from_millis(500));
        assert_eq!(options.connection.max_connections, None);
        assert_eq!(options.connection.tcp_keepalive, None);
        assert_eq!(options.connection.write_timeout.as_secs(), 10);
        // Every key of the file is a builder method of the same name.
        let builder = include_str!("builder.rs");
        let schema = ServerConfig::json_schema();
        for key in schema["properties"].as_object().unwrap().keys() {
            if key == "things" {
                continue;
            }
            assert!(
                builder.contains(&format!("pub fn {key}")),
                "no builder method `{key}`"
            );
        }
    }

    /// `docs/config.schema.json` is the schema the code makes; `UPDATE_SCHEMA=1 cargo test`
    /// rewrites it after a change to the options.
    #[test]
    fn the_published_config_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.schema.json");
        let current = serde_json::to_string_pretty(&ServerConfig::json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let published = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            published == current,
            "docs/config.schema.json is out of date: run UPDATE_SCHEMA=1 cargo test --lib config"
        );
    }
}
