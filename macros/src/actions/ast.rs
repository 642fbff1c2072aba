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
    /// `#[action(refuse_while_faulted)]`: refused with 409 while the Thing's health is faulted.
    pub refuse_while_faulted: bool,
    /// `#[action(output_unit = "mm")]`: the unit of the output.
    pub output_unit: Option<String>,
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
    /// What the argument's attributes say (`#[unit = "ms"]`, `#[min = 0.0]`, ...).
    pub attrs: ArgumentAttrs,
}

/// The attributes of one argument, for its entry in the input schema.
#[derive(Default, Clone)]
pub struct ArgumentAttrs {
    /// `#[unit = "ms"]`: the schema's `unit`.
    pub unit: Option<String>,
    /// `#[min = 0.0]` and the other limits: (JSON Schema keyword, value), checked before the
    /// action starts.
    pub limits: Vec<(&'static str, syn::Expr)>,
    /// Whether a limit is a number's (`min`, ...) rather than a string's (`min_length`, ...).
    pub numeric: bool,
    pub textual: bool,
    /// `#[description = "..."]`: the schema's `description`.
    pub description: Option<String>,
    /// `#[default = 1.0]`: the value when the argument is left out, also the schema's
    /// `default`.
    pub default: Option<syn::Expr>,
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
    /// `#[action(refuse_while_faulted)]`.
    pub refuse_while_faulted: bool,
    /// `#[action(output_unit = "mm")]`.
    pub output_unit: Option<String>,
    /// The attributes of each argument that has some, by argument name.
    pub arguments: Vec<(String, ArgumentAttrs)>,
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
