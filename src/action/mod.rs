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
//! - `#[action(lock = "motion")]` makes invocations of every action of the Thing that names the
//!   lock queue, so two cannot interleave on the hardware (`#[action(lock)]`: that action's
//!   invocations only); `#[action(rename = "...")]` and `#[action(skip)]` (a helper that is
//!   not an action) also exist.
//! - Return `T` (serde + JSON Schema), `()`, a [`Blob`] (binary data such as a JPEG), or
//!   `Result` of those with any `Display` error. An error or a panic ends the invocation as
//!   `error` with its message; the server keeps serving.
//!
//! The runtime of an action lives here, unit-tested beside each step: input
//! checking (a missing argument named from the input's schema), output conversion, blocking
//! execution, and the invocation table that runs, cancels and keeps invocations. The macro
//! only writes one [`ActionDescriptor::from_async`] or [`ActionDescriptor::from_blocking`] call
//! per method.

pub(crate) mod array;
mod body;
pub(crate) mod context;
mod descriptor;
mod input;
mod invocation;
mod output;
mod status;

pub use array::{ArrayData, ArrayError, NdArray};
pub(crate) use body::InvocationBody;
pub use context::{ActionContext, Cancelled, LogRecord};
pub(crate) use descriptor::ActionRun;
pub use descriptor::{ActionDescriptor, ActionPrepare, ActionStarter, ThingActions};
pub use input::InputError;
pub(crate) use invocation::{ActionEvent, Cancel, Invocation, Invocations, RunOptions};
pub(crate) use output::{ActionFailure, ActionOutput};
pub use output::{Blob, IntoOutput};
pub(crate) use output::{is_array_schema, is_blob_schema};
pub use status::InvocationStatus;
