//! Actions: what a Thing does when asked (move, capture, autofocus, a 20-minute scan).
//!
//! `#[thing_actions]` on an impl block makes each `&self` method an action: its arguments are
//! the input (a JSON object), its return value the output. Each call over HTTP is an
//! *invocation*, with the labthings-fastapi model: `POST /<thing>/<action>` answers `201` with
//! the invocation (`pending`), which then runs (`running`) and ends `completed`, `error` or
//! `cancelled`; clients poll `GET /action_invocations/{id}`.
//!
//! - `async fn` actions run on the async runtime; plain `fn` actions run on a blocking thread,
//!   so blocking instrument code never stalls the server.
//! - An [`ActionContext`] argument gives cancellation, progress and logging into the
//!   invocation's log.
//! - `#[action(lock)]` makes invocations of that action queue, so two cannot interleave on the
//!   hardware; `#[action(rename = "...")]` and `#[action(skip)]` (a helper that is not an
//!   action) also exist.
//! - Return `T` (serde + JSON Schema), `()`, a [`Blob`] (binary data such as a JPEG), or
//!   `Result` of those with any `Display` error. An error or a panic ends the invocation as
//!   `error` with its message; the server keeps serving.

mod context;
mod invocation;

pub use context::{ActionContext, Cancelled, LogRecord};
pub(crate) use invocation::{ActionEvent, Invocation, Invocations};
pub use invocation::{ActionFailure, ActionOutput, ActionRun, Blob, InvocationStatus};

use std::sync::Arc;

use serde_json::Value;

/// Implemented by `#[thing_actions]`: the actions of a Thing.
pub trait ThingActions: Sized {
    /// Every action, in declaration order.
    fn actions() -> Vec<ActionDescriptor<Self>>;
}

/// Starts one run of an action, given its context.
pub type ActionStarter = Box<dyn FnOnce(ActionContext) -> ActionRun + Send>;

/// Checks an action's input and prepares a run of it.
pub type ActionPrepare<T> = fn(Arc<T>, Value) -> Result<ActionStarter, InputError>;

/// One action of a Thing, as built by `#[thing_actions]`.
#[non_exhaustive]
pub struct ActionDescriptor<T> {
    /// The name in URLs and the TD.
    pub name: &'static str,
    /// A short summary: the doc comment's first line.
    pub title: Option<&'static str>,
    /// The whole doc comment.
    pub description: Option<&'static str>,
    /// The JSON Schema of the input object.
    pub input_schema: fn() -> Value,
    /// The JSON Schema of the output.
    pub output_schema: fn() -> Value,
    /// Invocations queue for this action instead of running side by side.
    pub lock: bool,
    /// Checks the input and prepares a run.
    pub prepare: ActionPrepare<T>,
}

impl<T> ActionDescriptor<T> {
    /// An action with no docs and no lock.
    pub fn new(
        name: &'static str,
        input_schema: fn() -> Value,
        output_schema: fn() -> Value,
        prepare: ActionPrepare<T>,
    ) -> Self {
        Self {
            name,
            title: None,
            description: None,
            input_schema,
            output_schema,
            lock: false,
            prepare,
        }
    }
}

/// An action input that does not fit: the path of the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input{}: {reason}", if field.is_empty() { String::new() } else { format!(" at `{field}`") })]
pub struct InputError {
    /// The offending field (empty for the whole input).
    pub field: String,
    /// What serde said.
    pub reason: String,
}
