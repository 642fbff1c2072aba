//! [`Property<T>`]: a value of a Thing that clients read, write and observe.

pub(crate) mod binding;
mod constraints;
pub(crate) mod history;
pub(crate) mod history_log;
pub(crate) mod settings;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

pub use constraints::{ConstraintViolation, Constraints};
pub use history::{DEFAULT_HISTORY_SAMPLES, HistoryOptions, HistorySample};
pub use history_log::{KEPT_FILES, LogStatus, ROTATE_BYTES};

/// What a property's value type needs: serde both ways, a JSON Schema, and `Clone`.
///
/// Every type that has these implements it. For your own structs and enums, mark them
/// `#[labthings::data]` (which derives the serde and schema traits through labthings' own
/// re-exports) and derive `Clone`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a property value",
    label = "not a property value type",
    note = "a property value is sent as JSON, described by a JSON Schema, and copied: mark your own type `#[labthings::data]` and derive `Clone` (`#[labthings::data] #[derive(Clone)]`); a type from another crate needs serde's `Serialize` and `Deserialize`, schemars' `JsonSchema` and `Clone`"
)]
pub trait PropertyValue:
    Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync + 'static
{
}

// Errors name `PropertyValue` (and its note above), not each serde or schemars trait missing.
#[diagnostic::do_not_recommend]
impl<T> PropertyValue for T where
    T: Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync + 'static
{
}

/// A property of a Thing: its current value, validated writes, change notification, and an
/// optional async setter hook that lets a write reach the hardware before it is accepted.
///
/// `Property` is a handle: clones share the value. Give a clone to the thread that talks to
/// the instrument, or to another Thing that needs to read this one.
///
/// Writes are validated with the property's constraints (`#[property(min = ..)]`) whether
/// they come over HTTP ([`set`](Self::set) is what `PUT` calls) or from Rust.
///
/// # Examples
///
/// ```
/// use labthings::{Property, property::SetError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let exposure = Property::new(10.0_f64).with_setter(|ms: f64| async move {
///     if ms > 500.0 {
///         return Err(SetError::unavailable("the sensor cannot expose that long"));
///     }
///     Ok(()) // a real setter would send `ms` to the camera here
/// });
/// exposure.set(20.0).await.unwrap();
/// assert_eq!(exposure.get(), 20.0);
/// assert!(exposure.set(600.0).await.is_err());
/// assert_eq!(exposure.get(), 20.0, "a rejected write changes nothing");
/// # }
/// ```
pub struct Property<T> {
    inner: Arc<Inner<T>>,
}

type Setter<T> = Box<dyn Fn(T) -> BoxFuture<'static, Result<(), SetError>> + Send + Sync>;

struct Inner<T> {
    value: watch::Sender<T>,
    binding: OnceLock<binding::Binding>,
    setter: OnceLock<Setter<T>>,
    /// Writes go through the setter one at a time, so the hardware and the stored value agree.
    writes: tokio::sync::Mutex<()>,
}

impl<T> Clone for Property<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Property<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Property")
            .field("name", &self.inner.binding.get().map(|b| &b.name))
            .field("value", &*self.inner.value.borrow())
            .finish()
    }
}

impl<T: PropertyValue + Default> Default for Property<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: PropertyValue> Property<T> {
    /// A property holding `initial`.
    pub fn new(initial: T) -> Self {
        Self {
            inner: Arc::new(Inner {
                value: watch::Sender::new(initial),
                binding: OnceLock::new(),
                setter: OnceLock::new(),
                writes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Adds a setter hook: every [`set`](Self::set) (and so every HTTP `PUT`) awaits it with
    /// the new value before storing it; if it fails, the value does not change and the client
    /// gets the error as problem JSON with its status.
    ///
    /// # Panics
    ///
    /// If the property already has a setter.
    pub fn with_setter<F, Fut>(self, setter: F) -> Self
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), SetError>> + Send + 'static,
    {
        let boxed: Setter<T> = Box::new(move |value| Box::pin(setter(value)));
        if self.inner.setter.set(boxed).is_err() {
            panic!("a property has at most one setter");
        }
        self
    }

    /// The current value.
    pub fn get(&self) -> T {
        self.inner.value.borrow().clone()
    }

    /// Validates `value`, passes it to the setter hook (if any), stores it, notifies observers
    /// and, for a setting, saves it. This is what an HTTP `PUT` does.
    ///
    /// # Errors
    ///
    /// [`PropertyError::Constraint`] if the value breaks a constraint,
    /// [`PropertyError::Rejected`] if the setter hook fails, and
    /// [`PropertyError::NotSaved`] if the value was applied but the settings file could not be
    /// written. In the first two cases the value does not change.
    pub async fn set(&self, value: T) -> Result<(), PropertyError> {
        let json = to_json(&value)?;
        self.check(&json)?;
        let _write = self.inner.writes.lock().await;
        if let Some(setter) = self.inner.setter.get() {
            setter(value.clone())
                .await
                .map_err(PropertyError::Rejected)?;
        }
        self.inner.value.send_replace(value);
        self.record(&json);
        if let Some(persist) = self.persist() {
            persist.save().await.map_err(PropertyError::NotSaved)?;
        }
        Ok(())
    }

    /// Stores a value the instrument itself reports (a counter, a measured position): validated,
    /// stored and sent to observers, without calling the setter hook. Callable from any thread.
    ///
    /// # Errors
    ///
    /// [`PropertyError::Constraint`] if the value breaks a constraint; it is not stored then.
    pub fn publish(&self, value: T) -> Result<(), PropertyError> {
        let json = to_json(&value)?;
        self.check(&json)?;
        self.inner.value.send_replace(value);
        self.record(&json);
        if let Some(persist) = self.persist() {
            persist.save_soon();
        }
        Ok(())
    }

    /// A receiver that sees every change of the value (the newest, if several come quickly).
    pub fn subscribe(&self) -> watch::Receiver<T> {
        self.inner.value.subscribe()
    }

    /// The property's name, once its Thing has been added to a server.
    pub fn name(&self) -> Option<&str> {
        self.inner
            .binding
            .get()
            .map(|binding| binding.name.as_str())
    }

    fn check(&self, json: &Value) -> Result<(), PropertyError> {
        if let Some(binding) = self.inner.binding.get() {
            binding
                .constraints
                .check_in(json, binding.unit)
                .map_err(|violation| PropertyError::Constraint {
                    property: binding.name.clone(),
                    violation,
                })?;
        }
        Ok(())
    }

    /// The samples of the property's history, oldest first: `None` if it keeps none
    /// (`#[property(history = ..)]` or the configuration's `history` turn it on) or is not yet
    /// served.
    pub fn history(&self) -> Option<Vec<HistorySample>> {
        let history = self.inner.binding.get()?.history.as_ref()?;
        Some(history.since(None))
    }

    /// Records a new value in the Thing's log of property changes, for SSE observers, and in
    /// the property's history.
    fn record(&self, json: &Value) {
        let Some(binding) = self.inner.binding.get() else {
            return;
        };
        if let Some((log, name)) = &binding.changes {
            log.push(name, json.to_string());
        }
        if let Some(history) = &binding.history {
            history.push(json);
        }
    }

    fn persist(&self) -> Option<&Arc<dyn binding::Persist>> {
        self.inner.binding.get().and_then(|b| b.persist.as_ref())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, PropertyError> {
    serde_json::to_value(value).map_err(|error| PropertyError::Serialize(error.to_string()))
}

/// Why a setter hook refused a value: an HTTP status and a message for the client.
///
/// # Examples
///
/// ```
/// use labthings::property::SetError;
///
/// let error = SetError::invalid("the filter wheel has no position 9");
/// assert_eq!(error.status().as_u16(), 422);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SetError {
    status: StatusCode,
    message: String,
}

impl SetError {
    /// The value is not acceptable to the instrument (422).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// The instrument cannot take a value now: busy, not connected, not homed (503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// Any status and message; statuses that are not errors become 500.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self {
            status,
            message: message.into(),
        }
    }

    /// The HTTP status a client gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Why a property write failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PropertyError {
    /// The JSON is not a value of the property's type.
    #[error("invalid value for property `{property}`: {detail}")]
    Invalid {
        /// The property.
        property: String,
        /// What serde said, with the path of the offending field.
        detail: String,
    },
    /// The value breaks one of the property's constraints.
    #[error("invalid value for property `{property}`: {violation}")]
    Constraint {
        /// The property.
        property: String,
        /// The broken constraint.
        violation: ConstraintViolation,
    },
    /// The setter hook refused the value.
    #[error("{0}")]
    Rejected(SetError),
    /// The value was applied but the settings file could not be written.
    #[error("the value was applied but could not be saved: {0}")]
    NotSaved(String),
    /// The value could not be turned into JSON.
    #[error("the value cannot be represented as JSON: {0}")]
    Serialize(String),
}

impl PropertyError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } | Self::Constraint { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Rejected(error) => error.status(),
            // 507 Insufficient Storage: the server could not store what it was sent.
            Self::NotSaved(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Serialize(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A property seen without its value type: what [`PropertyDescriptor::dynamic`](crate::thing::PropertyDescriptor::dynamic)
/// reaches, and what the server reads and writes as JSON. Only [`Property<T>`] implements it.
pub trait DynProperty: Send + Sync + binding::Bind {
    /// The value as JSON.
    ///
    /// # Errors
    ///
    /// [`PropertyError::Serialize`] if the value cannot be represented as JSON.
    fn read_json(&self) -> Result<Value, PropertyError>;
    /// Deserialises and [`Property::set`]s a value.
    fn write_json(&self, value: Value) -> BoxFuture<'_, Result<(), PropertyError>>;
    /// Every change, as JSON, starting with the current value.
    fn changes(&self) -> BoxStream<'static, Value>;
}

impl<T: PropertyValue> Property<T> {
    pub(crate) fn parse_json(&self, value: Value) -> Result<T, PropertyError> {
        let property = self.name().unwrap_or("value").to_owned();
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let message = crate::schema::plain_error(&error.inner().to_string());
            let detail = if path == "." {
                message
            } else {
                format!("at `{path}`: {message}")
            };
            PropertyError::Invalid { property, detail }
        })
    }
}

impl<T: PropertyValue> DynProperty for Property<T> {
    fn read_json(&self) -> Result<Value, PropertyError> {
        to_json(&*self.inner.value.borrow())
    }

    fn write_json(&self, value: Value) -> BoxFuture<'_, Result<(), PropertyError>> {
        Box::pin(async move {
            let value = self.parse_json(value)?;
            self.set(value).await
        })
    }

    fn changes(&self) -> BoxStream<'static, Value> {
        tokio_stream::wrappers::WatchStream::new(self.subscribe())
            .filter_map(|value| async move { serde_json::to_value(value).ok() })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::binding::{Bind, Binding};
    use super::*;

    fn bound<T: PropertyValue>(property: &Property<T>, constraints: Constraints) {
        let binding = Binding {
            name: "exposure".into(),
            constraints,
            unit: None,
            persist: None,
            changes: None,
            history: None,
        };
        assert!(property.bind(binding).is_ok());
    }

    #[tokio::test]
    async fn a_bad_value_is_told_in_json_words_and_a_limit_with_its_unit() {
        let property = Property::new(1.0_f64);
        let binding = Binding {
            name: "exposure".into(),
            constraints: Constraints {
                minimum: Some(0.1),
                ..Constraints::default()
            },
            unit: Some("ms"),
            persist: None,
            changes: None,
            history: None,
        };
        assert!(property.bind(binding).is_ok());
        let wrong = property.write_json(Value::from("hot")).await.unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "invalid value for property `exposure`: invalid type: string \"hot\", expected a number"
        );
        let low = property.write_json(Value::from(0.01)).await.unwrap_err();
        assert!(
            low.to_string()
                .contains("must be at least 0.1 ms, got 0.01 ms"),
            "{low}"
        );
    }

    #[tokio::test]
    async fn set_validates_with_the_same_constraints_as_http() {
        let exposure = Property::new(10.0);
        bound(
            &exposure,
            Constraints {
                minimum: Some(0.1),
                ..Default::default()
            },
        );
        let error = exposure.set(0.01).await.unwrap_err();
        assert!(matches!(error, PropertyError::Constraint { .. }));
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(exposure.publish(0.0).is_err(), "publish validates too");
        assert_eq!(exposure.get(), 10.0);
        let error = exposure
            .write_json(serde_json::json!(-1))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("at least 0.1"), "{error}");
    }

    #[tokio::test]
    async fn a_failing_setter_leaves_the_value_and_sets_the_status() {
        let gain = Property::new(1u8)
            .with_setter(|_| async { Err(SetError::unavailable("amplifier is off")) });
        let error = gain.set(2).await.unwrap_err();
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.to_string(), "amplifier is off");
        assert_eq!(gain.get(), 1);
    }

    #[tokio::test]
    async fn subscribers_see_changes() {
        let position = Property::new([0i64; 3]);
        let mut changes = position.subscribe();
        position.publish([1, 2, 3]).unwrap();
        changes.changed().await.unwrap();
        assert_eq!(*changes.borrow(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn wrong_json_types_name_the_field_path() {
        #[derive(Clone, serde::Serialize, serde::Deserialize, JsonSchema)]
        struct Roi {
            x: u32,
            y: u32,
        }
        let roi = Property::new(Roi { x: 0, y: 0 });
        bound(&roi, Constraints::default());
        let error = roi
            .write_json(serde_json::json!({"x": 1, "y": "two"}))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("at `y`"), "{error}");
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn a_property_binds_to_one_thing_only() {
        let property = Property::new(true);
        bound(&property, Constraints::default());
        let again = Binding {
            name: "other".into(),
            constraints: Constraints::default(),
            unit: None,
            persist: None,
            changes: None,
            history: None,
        };
        assert!(property.bind(again).is_err());
    }

    #[test]
    fn set_error_statuses_are_errors() {
        assert_eq!(
            SetError::new(StatusCode::OK, "?").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(SetError::invalid("x").status().as_u16(), 422);
    }
}
