//! Support for the code `#[derive(Thing)]` generates. Not public API: it may change in any
//! release.

pub use schemars;
pub use serde;
pub use serde_json::Value;

pub use crate::schema::json_schema_of;

use crate::action::{
    ActionDescriptor, ActionFailure, ActionOutput, Blob, Cancelled, InputError, ThingActions,
};

pub use crate::property::{Constraints, DynProperty};
pub use crate::thing::{BoxError, PropertyDescriptor, StreamDescriptor, ThingDescriptor};

use crate::property::{Property, PropertyValue};
use crate::stream::MjpegStream;

/// A field that `#[property]` or `#[setting]` can mark: a [`Property<T>`].
#[diagnostic::on_unimplemented(
    message = "`#[property]` and `#[setting]` fields must be `labthings::Property<T>`, not `{Self}`",
    label = "not a `Property<T>`",
    note = "wrap the value: `Property<{Self}>`, and build it with `Property::new(value)`"
)]
pub trait PropertyField: DynProperty {
    /// The value type.
    type Value: PropertyValue;
    /// The JSON Schema of the value type.
    fn schema() -> Value;
}

impl<T: PropertyValue> PropertyField for Property<T> {
    type Value = T;
    fn schema() -> Value {
        crate::schema::json_schema_of::<T>()
    }
}

/// A field that `#[stream]` can mark: an [`MjpegStream`].
#[diagnostic::on_unimplemented(
    message = "`#[stream]` fields must be `labthings::stream::MjpegStream`, not `{Self}`",
    label = "not an `MjpegStream`"
)]
pub trait StreamField {
    /// The stream.
    fn stream(&self) -> &MjpegStream;
}

impl StreamField for MjpegStream {
    fn stream(&self) -> &MjpegStream {
        self
    }
}

/// Value types that numeric constraints (`min`, `max`, ...) apply to.
#[diagnostic::on_unimplemented(
    message = "`min`, `max`, `exclusive_min`, `exclusive_max` and `multiple_of` need a number, not `{Self}`",
    label = "not a number"
)]
pub trait NumericValue {}

/// Value types that string constraints (`min_length`, `max_length`, `pattern`) apply to.
#[diagnostic::on_unimplemented(
    message = "`min_length`, `max_length` and `pattern` need a string, not `{Self}`",
    label = "not a string"
)]
pub trait StringValue {}

macro_rules! numeric {
    ($($t:ty),*) => { $(impl NumericValue for $t {})* };
}
numeric!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);
impl<T: NumericValue> NumericValue for Option<T> {}
impl StringValue for String {}
impl<T: StringValue> StringValue for Option<T> {}

/// Used by the derive: checks at compile time that a field is a property.
pub fn property<P: PropertyField>(field: &P) -> &dyn DynProperty {
    field
}

/// Used by the derive: checks at compile time that a field is a stream.
pub fn stream<S: StreamField>(field: &S) -> &MjpegStream {
    field.stream()
}

/// Used by the derive: checks at compile time that a constraint fits the value type.
pub fn assert_numeric<P: PropertyField>()
where
    P::Value: NumericValue,
{
}

/// Used by the derive: checks at compile time that a constraint fits the value type.
pub fn assert_string<P: PropertyField>()
where
    P::Value: StringValue,
{
}

/// Used by the derive: turns a lifecycle hook's result into the trait's.
pub fn lifecycle<E: Into<BoxError>>(result: Result<(), E>) -> Result<(), BoxError> {
    result.map_err(Into::into)
}

/// Used by `#[thing_actions]`: the input object (`null` counts as `{}`).
///
/// # Errors
///
/// [`InputError`] naming the field that does not fit.
pub fn parse_input<I: serde::de::DeserializeOwned>(input: Value) -> Result<I, InputError> {
    let input = match input {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => input,
        other => {
            // serde would read a struct from an array too; an action's input is an object.
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            return Err(InputError {
                field: String::new(),
                reason: format!("the input must be a JSON object of arguments, not {kind}"),
            });
        }
    };
    serde_path_to_error::deserialize(input).map_err(|error| {
        let reason = error.inner().to_string();
        let field = match error.path().to_string() {
            // serde reports a missing field at the object that lacks it; name the field.
            path if path == "." => reason
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .unwrap_or_default()
                .to_owned(),
            path => path,
        };
        InputError { field, reason }
    })
}

/// Used by `#[thing_actions]`: runs a blocking action on a blocking thread. A panic in it is
/// passed on, to end the invocation as `error`.
pub async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the runtime shut down while a blocking action ran"),
        },
    }
}

/// An action's output: JSON, or a [`Blob`].
#[diagnostic::on_unimplemented(
    message = "an action cannot return `{Self}`: outputs are serde `Serialize` + `JsonSchema` values, `()` or a `Blob`",
    label = "not an action output",
    note = "for your own type, add `#[labthings::data]` to it"
)]
pub trait IntoOutput {
    /// The output, or why there is none.
    fn into_output(self) -> Result<ActionOutput, ActionFailure>;
    /// The JSON Schema of the output.
    fn schema() -> Value;
}

impl<T: serde::Serialize + schemars::JsonSchema> IntoOutput for T {
    fn into_output(self) -> Result<ActionOutput, ActionFailure> {
        serde_json::to_value(self)
            .map(ActionOutput::Json)
            .map_err(|error| ActionFailure::Error {
                kind: "SerializationError".to_owned(),
                message: format!("the output cannot be represented as JSON: {error}"),
            })
    }
    fn schema() -> Value {
        json_schema_of::<T>()
    }
}

impl IntoOutput for Blob {
    fn into_output(self) -> Result<ActionOutput, ActionFailure> {
        Ok(ActionOutput::Blob(self))
    }
    fn schema() -> Value {
        serde_json::json!({
            "title": "Blob",
            "description": "Binary output, fetched from `href`.",
            "type": "object",
            "properties": {
                "href": {"type": "string"},
                "media_type": {"type": "string"},
                "rel": {"type": "string"},
                "description": {"type": "string"},
            },
            "required": ["href", "media_type"],
        })
    }
}

/// Used by `#[thing_actions]`.
pub fn output<T: IntoOutput>(value: T) -> Result<ActionOutput, ActionFailure> {
    value.into_output()
}

/// Used by `#[thing_actions]`.
pub fn output_schema<T: IntoOutput>() -> Value {
    T::schema()
}

/// Used by `#[thing_actions]`: an action that returned `Result<T, E>`.
pub fn result_output<T: IntoOutput, E: std::fmt::Display + 'static>(
    result: Result<T, E>,
) -> Result<ActionOutput, ActionFailure> {
    match result {
        Ok(value) => value.into_output(),
        Err(error) if (&error as &dyn std::any::Any).is::<Cancelled>() => {
            Err(ActionFailure::Cancelled)
        }
        Err(error) => Err(ActionFailure::Error {
            kind: short_type_name::<E>(),
            message: error.to_string(),
        }),
    }
}

fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// Used by `#[derive(Thing)]` to find a Thing's actions, if it has any (autoref
/// specialisation: the impl for `ActionsProbe<T>` wins when `T: ThingActions`).
pub struct ActionsProbe<T>(std::marker::PhantomData<T>);

impl<T> ActionsProbe<T> {
    /// The probe.
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for ActionsProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe's answer for Things with `#[thing_actions]`.
pub trait HasActions<T> {
    /// The actions.
    fn actions(&self) -> Vec<ActionDescriptor<T>>;
}

impl<T: ThingActions> HasActions<T> for ActionsProbe<T> {
    fn actions(&self) -> Vec<ActionDescriptor<T>> {
        T::actions()
    }
}

/// The probe's answer for Things without.
pub trait NoActions<T> {
    /// No actions.
    fn actions(&self) -> Vec<ActionDescriptor<T>>;
}

impl<T> NoActions<T> for &ActionsProbe<T> {
    fn actions(&self) -> Vec<ActionDescriptor<T>> {
        Vec::new()
    }
}
