//! The intermediate representation of `#[thing_actions]`: one [`Action`] per method.

use proc_macro2::Span;
use syn::Type;

/// A method that is an action.
pub struct Action<'a> {
    pub method: &'a syn::Ident,
    /// The name in URLs and the TD (the method's unless renamed), and where it was written.
    pub name: String,
    pub name_span: Span,
    pub title: Option<String>,
    pub description: Option<String>,
    pub execution: Execution,
    /// `#[action(lock)]`: the action's own lock; `#[action(lock = "name")]`: a named one.
    pub lock: Lock,
    /// The arguments that make up the input, in order.
    pub inputs: Vec<Input<'a>>,
    /// Every argument in order, inputs and the context.
    pub arguments: Vec<Argument<'a>>,
    pub returns: Returns<'a>,
}

/// How an action runs.
#[derive(Clone, Copy)]
pub enum Execution {
    /// `async fn`: on the async runtime.
    Async,
    /// `fn`: on a blocking thread.
    Blocking,
}

/// An argument that is a field of the input.
pub struct Input<'a> {
    pub name: &'a syn::Ident,
    pub ty: &'a Type,
    /// `T` if the argument is an `Option<T>` (it may be left out).
    pub option_of: Option<&'a Type>,
    /// `#[unit = "ms"]` on the argument: its unit, for the input schema's `unit`.
    pub unit: Option<String>,
}

/// One argument of the method, in order.
pub enum Argument<'a> {
    Input(&'a syn::Ident),
    Context,
}

/// What the method returns.
pub enum Returns<'a> {
    Nothing,
    Value(&'a Type),
    /// `Result<T, E>`: the output type `T`.
    Result(&'a Type),
}

/// The options of `#[action(...)]`.
#[derive(Default)]
pub struct Options {
    pub skip: bool,
    pub rename: Option<(String, Span)>,
    pub lock: Lock,
    /// `#[unit = "..."]` of each argument that has one, by argument name.
    pub units: Vec<(String, String)>,
}

/// Which lock an action holds while it runs.
#[derive(Default, Clone)]
pub enum Lock {
    #[default]
    None,
    /// Its own.
    Own,
    /// One the Thing's actions share by name.
    Named(String),
}
