//! `clear_fault`: the action a Thing with `#[health]` gets. It ends a fault once its cause is
//! dealt with, so that actions refused while faulted run again.

use std::sync::Arc;

use serde::Deserialize;

use crate::action::ActionDescriptor;
use crate::health::{CLEAR_FAULT, Health};

/// `clear_fault` takes no arguments.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

/// The `clear_fault` action of a Thing with `#[health]`: ends a fault, and gives the status.
pub(crate) fn descriptor<T: Send + Sync + 'static>(
    health: for<'a> fn(&'a T) -> &'a Health,
) -> ActionDescriptor<T> {
    ActionDescriptor::from_async(CLEAR_FAULT, move |thing: Arc<T>, _: NoArguments, _| {
        let health = health(&thing);
        health.clear();
        let status = health.status();
        async move { Ok::<_, std::convert::Infallible>(status) }
    })
    .with_docs(
        Some("Clear the fault"),
        Some(
            "Ends a fault once its cause is dealt with: the instrument is `ok` again, and \
             actions refused while it was faulted run again. Gives the new state.",
        ),
    )
}
