//! What the server tells a property when its Thing is added, and what it does with a property
//! that users never do (bind it, load a setting). Public items of a private module: the server
//! reaches them as `crate::property::binding`; users never name them.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Constraints, Property, PropertyError, PropertyValue};
use crate::bound::AlreadyBound;

/// What the server tells a property when its Thing is added: its name, its constraints and,
/// for a setting, where to persist it.
pub struct Binding {
    pub(crate) name: String,
    pub(crate) constraints: Constraints,
    /// The value's unit, said in limit errors.
    pub(crate) unit: Option<&'static str>,
    pub(crate) persist: Option<Arc<dyn Persist>>,
    /// Where every new value is recorded for observers that may resume (Server-Sent Events),
    /// with the property's name there.
    pub(crate) changes: Option<(Arc<crate::event::EventLog>, Arc<str>)>,
    /// The property's history, if it keeps one.
    pub(crate) history: Option<Arc<super::history::History>>,
}

/// Saves the settings a property belongs to.
pub trait Persist: Send + Sync {
    /// Writes the settings file now.
    fn save(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Writes the settings file soon, from a caller that cannot wait.
    fn save_soon(&self);
}

/// What only the server does to a property: the sealed half of [`DynProperty`](super::DynProperty).
pub trait Bind {
    /// Deserialises, validates and stores a value without the setter hook or saving (used to
    /// load settings).
    fn load_json(&self, value: Value) -> Result<(), PropertyError>;
    /// Attaches name, constraints and persistence; a property belongs to one Thing only.
    fn bind(&self, binding: Binding) -> Result<(), AlreadyBound>;
}

impl<T: PropertyValue> Bind for Property<T> {
    fn load_json(&self, value: Value) -> Result<(), PropertyError> {
        self.check(&value)?;
        let parsed = self.parse_json(value.clone())?;
        self.inner.value.send_replace(parsed);
        self.record(&value);
        Ok(())
    }

    fn bind(&self, binding: Binding) -> Result<(), AlreadyBound> {
        let history = binding.history.clone();
        self.inner.binding.set(binding).map_err(|_| AlreadyBound)?;
        // A history starts with the value the property has when it is served.
        if let (Some(history), Ok(value)) = (history, super::to_json(&self.get())) {
            history.push(&value);
        }
        Ok(())
    }
}
