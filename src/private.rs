//! Support for the code `#[derive(Thing)]` and `#[thing_actions]` generate: re-exports, and
//! the traits and functions that check a Thing's field and method types at compile time (their
//! `on_unimplemented` messages are what a user sees for a wrong type). Runtime logic lives in
//! the module it serves. Not public API: it may change in any release.

pub use core::convert::Infallible;
pub use schemars;
pub use serde;
pub use serde_json::Value;

pub use crate::action::{ActionContext, ActionDescriptor, IntoOutput, ThingActions};
pub use crate::event::binding::DynEvent;
pub use crate::property::{Constraints, DynProperty};
pub use crate::thing::{
    BoxError, EventDescriptor, PropertyDescriptor, StreamDescriptor, ThingDescriptor,
};

use crate::event::Event;
use crate::property::{Property, PropertyValue};
use crate::stream::MjpegStream;

/// A lifecycle hook's result as the trait's (any error type boxed). Used by the code
/// `#[thing(on_start = ...)]` generates.
pub fn lifecycle_result<E: Into<BoxError>>(result: Result<(), E>) -> Result<(), BoxError> {
    result.map_err(Into::into)
}

/// The recording action of a stream: `record_<stream>` for `#[stream(record)]`.
pub fn record_action<T: Send + Sync + 'static>(
    name: &'static str,
    stream: &'static str,
    access: for<'a> fn(&'a T) -> &'a MjpegStream,
) -> ActionDescriptor<T> {
    crate::record::action(name, stream, access)
}

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

/// A field that `#[event]` can mark: an [`Event<T>`](crate::Event).
#[diagnostic::on_unimplemented(
    message = "`#[event]` fields must be `labthings::Event<T>`, not `{Self}`",
    label = "not an `Event<T>`",
    note = "declare it as `Event<T>` with a property-value type `T`, built with `Event::new()`"
)]
pub trait EventField: DynEvent {
    /// The JSON Schema of the event's data.
    fn schema() -> Value;
}

impl<T: PropertyValue> EventField for Event<T> {
    fn schema() -> Value {
        crate::schema::json_schema_of::<T>()
    }
}

/// Used by the derive: checks at compile time that a field is an event.
pub fn event<E: EventField>(field: &E) -> &dyn DynEvent {
    field
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

/// What a `#[health]` field must be: a [`Health`](crate::health::Health).
#[diagnostic::on_unimplemented(
    message = "a `#[health]` field is a `labthings::health::Health`, not `{Self}`",
    label = "not a `Health`"
)]
pub trait HealthField {
    /// The field as the Thing's health.
    fn health(&self) -> &crate::health::Health;
}

impl HealthField for crate::health::Health {
    fn health(&self) -> &crate::health::Health {
        self
    }
}

/// Used by the derive: a `Health`'s `state` property.
pub fn health_state(field: &crate::health::Health) -> &dyn DynProperty {
    field.state_property()
}

/// Used by the derive: a `Health`'s `fault` event.
pub fn health_fault(field: &crate::health::Health) -> &dyn DynEvent {
    field.fault_event()
}

/// Used by the derive for `#[health]`: the `state` property and the `fault` event (the
/// server adds the `clear_fault` action).
pub fn add_health<T: 'static>(
    descriptor: &mut ThingDescriptor<T>,
    health: for<'a> fn(&'a T) -> &'a crate::health::Health,
    state: for<'a> fn(&'a T) -> &'a dyn DynProperty,
    fault: for<'a> fn(&'a T) -> &'a dyn DynEvent,
) {
    let mut property = PropertyDescriptor::new(
        crate::health::STATE,
        crate::schema::json_schema_of::<crate::health::Status>,
        state,
    );
    property.title = Some("State");
    property.description = Some(
        "Whether the instrument is `ok`, `busy`, `faulted` or `disconnected`, why, and since \
         when. A fault stays until `clear_fault`; actions that refuse to run on a faulted \
         instrument answer 409 meanwhile.",
    );
    property.read_only = true;
    descriptor.properties.push(property);
    let mut event = EventDescriptor::new(
        crate::health::FAULT,
        crate::schema::json_schema_of::<crate::health::Fault>,
        fault,
    );
    event.title = Some("Fault");
    event.description = Some(
        "The instrument went faulted (or had a further fault while faulted): what went wrong, \
         and which watched worker or heartbeat, if one.",
    );
    descriptor.events.push(event);
    descriptor.health = Some(health);
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

/// Used by `#[thing_actions]`: checks at compile time that `#[min = ..]` and the other number
/// limits are on a number argument.
pub fn assert_numeric_argument<T: NumericValue>() {}

/// Used by `#[thing_actions]`: checks at compile time that `#[min_length = ..]` and
/// `#[max_length = ..]` are on a string argument.
pub fn assert_string_argument<T: StringValue>() {}

/// Used by `#[thing_actions]`: checks at compile time, at the method's return type, that the
/// output is one an action can have.
pub fn assert_output<T: IntoOutput>() {}

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

/// What an action's argument type needs: it comes from the request's JSON and is described
/// by a JSON Schema.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an action argument",
    label = "not an action argument type",
    note = "an argument comes from the request's JSON and is described by a JSON Schema: mark your own type `#[labthings::data]`; a type from another crate needs serde's `Deserialize` and schemars' `JsonSchema`"
)]
pub trait ActionArgument:
    serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static
{
}

// Errors name `ActionArgument` (and its note above), not each serde or schemars trait missing.
#[diagnostic::do_not_recommend]
impl<T: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static> ActionArgument for T {}

/// One argument in the input struct `#[thing_actions]` generates, for serde and schemars alike.
///
/// Its impls hold for every `S`, so serde's and schemars' derives on the input struct never
/// fail: the argument's type is checked once, by `assert_argument` at the type as written, and
/// a type that cannot be an argument is that one error in our words (not one per place serde's
/// derive uses the field). `S` is a type the macro writes per argument; it reaches the
/// argument's own impls through [`ArgProbe`].
pub struct Arg<S: ArgSource>(pub S::Value);

/// The argument type behind an [`Arg`], written per argument by `#[thing_actions]`.
pub trait ArgSource: 'static {
    /// The argument's type.
    type Value;
    /// The argument, read from the request.
    ///
    /// # Errors
    ///
    /// When the value does not fit the type.
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self::Value, D::Error>;
    /// How the argument is described.
    fn schema() -> ArgSchema;
}

/// An argument type's [`schemars::JsonSchema`] functions, as values.
#[derive(Clone, Copy)]
pub struct ArgSchema {
    name: fn() -> std::borrow::Cow<'static, str>,
    id: fn() -> std::borrow::Cow<'static, str>,
    json_schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    inline: fn() -> bool,
    non_optional: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    is_option: fn() -> bool,
}

impl ArgSchema {
    fn of<T: schemars::JsonSchema>() -> Self {
        Self {
            name: T::schema_name,
            id: T::schema_id,
            json_schema: T::json_schema,
            inline: T::inline_schema,
            non_optional: T::_schemars_private_non_optional_json_schema,
            is_option: T::_schemars_private_is_option,
        }
    }
}

impl<'de, S: ArgSource> serde::Deserialize<'de> for Arg<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        S::deserialize(deserializer).map(Arg)
    }
}

impl<S: ArgSource> schemars::JsonSchema for Arg<S> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        (S::schema().name)()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        (S::schema().id)()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        (S::schema().json_schema)(generator)
    }
    fn inline_schema() -> bool {
        (S::schema().inline)()
    }
    fn _schemars_private_non_optional_json_schema(
        generator: &mut schemars::SchemaGenerator,
    ) -> schemars::Schema {
        (S::schema().non_optional)(generator)
    }
    fn _schemars_private_is_option() -> bool {
        (S::schema().is_option)()
    }
}

/// Used by `#[thing_actions]`: checks at compile time, at the argument's type, that it can be an
/// action argument. The one error a wrong argument type gives.
pub fn assert_argument<T: ActionArgument>() {}

/// Reaches an argument type's serde and schemars impls when it has them (autoref
/// specialisation: [`CheckedArg`] for `ArgProbe<T>` wins when `T: ActionArgument`; otherwise
/// [`UncheckedArg`] answers, in code that `assert_argument` has already refused).
pub struct ArgProbe<T>(std::marker::PhantomData<T>);

impl<T> ArgProbe<T> {
    /// The probe.
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for ArgProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe's answer for a type that can be an argument.
pub trait CheckedArg<T> {
    /// Reads the argument.
    ///
    /// # Errors
    ///
    /// When the value does not fit the type.
    fn deserialize<'de, D: serde::Deserializer<'de>>(&self, deserializer: D)
    -> Result<T, D::Error>;
    /// Its schema functions.
    fn schema(&self) -> ArgSchema;
}

impl<T: ActionArgument> CheckedArg<T> for ArgProbe<T> {
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        &self,
        deserializer: D,
    ) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }
    fn schema(&self) -> ArgSchema {
        ArgSchema::of::<T>()
    }
}

/// The probe's answer for a type that cannot be an argument: only ever compiled beside the
/// `assert_argument` error, so never run.
pub trait UncheckedArg<T> {
    /// Refuses.
    ///
    /// # Errors
    ///
    /// Always.
    fn deserialize<'de, D: serde::Deserializer<'de>>(&self, deserializer: D)
    -> Result<T, D::Error>;
    /// An empty description.
    fn schema(&self) -> ArgSchema;
}

impl<T> UncheckedArg<T> for &ArgProbe<T> {
    fn deserialize<'de, D: serde::Deserializer<'de>>(&self, _: D) -> Result<T, D::Error> {
        Err(serde::de::Error::custom("not an action argument type"))
    }
    fn schema(&self) -> ArgSchema {
        ArgSchema::of::<()>()
    }
}

/// An action's output, as `#[thing_actions]` hands it to the library: [`IntoOutput`] for every
/// `S`, so that an output type that is not one is only the `assert_output` error. `S` is a type
/// the macro writes per action; it reaches the output's own impl through [`OutputProbe`].
pub struct Out<S: OutputSource>(pub S::Value);

/// The output type behind an [`Out`], written per action by `#[thing_actions]`.
pub trait OutputSource: 'static {
    /// The output's type.
    type Value: Send + 'static;
    /// Its [`IntoOutput`] functions.
    fn output() -> OutputFns<Self::Value>;
}

/// An output type's [`IntoOutput`] functions, as values.
pub struct OutputFns<T> {
    into_output: fn(T) -> Result<crate::action::ActionOutput, crate::action::ActionFailure>,
    schema: fn() -> Value,
}

impl<S: OutputSource> IntoOutput for Out<S> {
    fn into_output(self) -> Result<crate::action::ActionOutput, crate::action::ActionFailure> {
        (S::output().into_output)(self.0)
    }
    fn schema() -> Value {
        (S::output().schema)()
    }
}

/// Reaches an output type's [`IntoOutput`] impl when it has one (as [`ArgProbe`] does for
/// arguments).
pub struct OutputProbe<T>(std::marker::PhantomData<T>);

impl<T> OutputProbe<T> {
    /// The probe.
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for OutputProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe's answer for a type that can be an output.
pub trait CheckedOutput<T> {
    /// Its functions.
    fn output(&self) -> OutputFns<T>;
}

impl<T: IntoOutput> CheckedOutput<T> for OutputProbe<T> {
    fn output(&self) -> OutputFns<T> {
        OutputFns {
            into_output: T::into_output,
            schema: T::schema,
        }
    }
}

/// The probe's answer for a type that cannot be an output: only ever compiled beside the
/// `assert_output` error, so never run.
pub trait UncheckedOutput<T> {
    /// Functions that refuse.
    fn output(&self) -> OutputFns<T>;
}

impl<T> UncheckedOutput<T> for &OutputProbe<T> {
    fn output(&self) -> OutputFns<T> {
        OutputFns {
            into_output: |_| {
                Err(crate::action::ActionFailure::Error {
                    kind: "OutputError".to_owned(),
                    message: "not an action output type".to_owned(),
                })
            },
            schema: || Value::Null,
        }
    }
}
