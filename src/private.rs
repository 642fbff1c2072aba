//! Support for the code `#[derive(Thing)]` and `#[thing_actions]` generate: re-exports, and
//! the traits and functions that check a Thing's field and method types at compile time (their
//! `on_unimplemented` messages are what a user sees for a wrong type). Runtime logic lives in
//! the module it serves. Not public API: it may change in any release.

pub use core::convert::Infallible;
pub use schemars;
pub use serde;
pub use serde_json::Value;

pub use crate::action::{ActionContext, ActionDescriptor, IntoOutput, ThingActions};
pub use crate::event::DynEvent;
pub use crate::property::{Constraints, DynProperty};
pub use crate::thing::{
    BoxError, EventDescriptor, PropertyDescriptor, StreamDescriptor, ThingDescriptor,
    lifecycle_result,
};

use crate::event::Event;
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

/// One argument in the input struct `#[thing_actions]` generates: the argument itself, for
/// serde and schemars alike, but checked as an [`ActionArgument`], so that a type that cannot be
/// one is a single error in our words rather than errors from inside serde's derive.
#[repr(transparent)]
pub struct Arg<T>(pub T);

impl<'de, T: ActionArgument> serde::Deserialize<'de> for Arg<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Arg)
    }
}

impl<T: ActionArgument> schemars::JsonSchema for Arg<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn _schemars_private_non_optional_json_schema(
        generator: &mut schemars::SchemaGenerator,
    ) -> schemars::Schema {
        T::_schemars_private_non_optional_json_schema(generator)
    }
    fn _schemars_private_is_option() -> bool {
        T::_schemars_private_is_option()
    }
}
