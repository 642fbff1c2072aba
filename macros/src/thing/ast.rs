//! The intermediate representation of a Thing: what the attributes said, with spans.

use proc_macro2::Span;

/// A struct deriving `Thing`.
pub struct Thing<'a> {
    pub ident: &'a syn::Ident,
    pub generics: &'a syn::Generics,
    pub title: String,
    pub description: Option<String>,
    pub on_start: Option<syn::Path>,
    pub on_stop: Option<syn::Path>,
    /// `instance_properties = path`: properties found at run time (`Thing::instance_properties`).
    pub instance_properties: Option<syn::Path>,
    pub members: Vec<Member<'a>>,
}

/// A field with a `#[property]`, `#[setting]`, `#[stream]` or `#[event]` attribute.
pub struct Member<'a> {
    pub field: &'a syn::Ident,
    pub ty: &'a syn::Type,
    /// The name in URLs and the TD (the field name unless renamed).
    pub name: String,
    pub name_span: Span,
    /// The first line of the doc comment, and the whole of it.
    pub title: Option<String>,
    pub description: Option<String>,
    pub kind: MemberKind,
}

pub enum MemberKind {
    Property(PropertyOptions),
    Stream {
        ringbuffer: Option<(usize, Span)>,
        /// `#[stream(record)]`: the stream gets a `record_<name>` action.
        record: bool,
    },
    Event {
        /// `unit = "°C"`: the unit of the event's data.
        unit: Option<String>,
    },
    /// `#[health]`: the Thing's `Health`, which adds `state`, `fault` and `clear_fault`.
    Health,
}

/// Whether a property is a plain property or a setting.
#[derive(Clone, Copy)]
pub enum Persistence {
    Memory,
    Setting,
}

/// Who may write the property over HTTP.
#[derive(Clone, Copy)]
pub enum Access {
    ReadWrite,
    ReadOnly(Span),
}

pub struct PropertyOptions {
    pub persistence: Persistence,
    pub access: Access,
    pub observable: bool,
    pub numeric: Vec<(NumericKey, f64, Span)>,
    pub lengths: Vec<(LengthKey, u64, Span)>,
    pub pattern: Option<(String, Span)>,
    /// The unit of the value (`"ms"`, `"°C"`), for the TD's `unit`.
    pub unit: Option<String>,
    /// `history = 1000` or `history = "10 min"`.
    pub history: Option<HistoryLength>,
    /// `history_interval = "100 ms"`: changes closer than this are merged, in nanoseconds.
    pub history_interval: Option<(u64, Span)>,
    /// `history_log`: the history is appended to disk too.
    pub history_log: Option<Span>,
}

/// How long a property's history is: a number of samples, or a duration in nanoseconds.
#[derive(Clone, Copy)]
pub enum HistoryLength {
    Samples(u64),
    Nanos(u64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NumericKey {
    Min,
    Max,
    ExclusiveMin,
    ExclusiveMax,
    MultipleOf,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LengthKey {
    MinLength,
    MaxLength,
}

impl NumericKey {
    /// The attribute key that sets it.
    pub fn attr(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
            Self::ExclusiveMin => "exclusive_min",
            Self::ExclusiveMax => "exclusive_max",
            Self::MultipleOf => "multiple_of",
        }
    }

    /// The field of `labthings::property::Constraints` it sets.
    pub fn field(self) -> &'static str {
        match self {
            Self::Min => "minimum",
            Self::Max => "maximum",
            Self::ExclusiveMin => "exclusive_minimum",
            Self::ExclusiveMax => "exclusive_maximum",
            Self::MultipleOf => "multiple_of",
        }
    }
}

impl LengthKey {
    pub fn field(self) -> &'static str {
        match self {
            Self::MinLength => "min_length",
            Self::MaxLength => "max_length",
        }
    }
}
