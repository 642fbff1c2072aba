//! Invocations: one run of an action, from request to result ([`entry`]: `Invocation`), and
//! the table that starts, runs, cancels and keeps them ([`table`]: `Invocations`). Their
//! shared private state is `pub(super)`: visible here, in this folder, and nowhere else.

mod entry;
mod table;

pub(crate) use entry::{ActionEvent, Cancel, Invocation, RunOptions};
pub(crate) use table::Invocations;
