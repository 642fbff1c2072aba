//! `stop_all`: the action every Thing with actions gets. One call stops every unfinished
//! invocation of the Thing's other actions, running or waiting for its lock, and no other
//! Thing's: an abort button, or what an interlock calls.

use std::convert::Infallible;
use std::sync::{Arc, Weak};

use crate::action::{ActionDescriptor, Invocations};
use crate::layout::STOP_ALL;

/// `stop_all` takes no arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

/// What `stop_all` did.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Stopped {
    /// The invocations asked to stop (their ids): each ends as `cancelled`.
    cancelled: Vec<String>,
    /// Running invocations of actions that cannot be stopped (blocking actions that take no
    /// context to check): they run to their end.
    not_cancellable: Vec<String>,
}

const TITLE: &str = "Stop everything";
const DESCRIPTION: &str = "Stops every running or waiting invocation of this Thing's other \
    actions, and no other Thing's: each ends as `cancelled` once its action notices. The \
    output lists them, and any running action that cannot be stopped.";

/// The `stop_all` action of the Thing `thing`.
pub(crate) fn descriptor<T: Send + Sync + 'static>(
    thing: &str,
    invocations: &Arc<Invocations>,
) -> ActionDescriptor<T> {
    let thing = thing.to_owned();
    let invocations: Weak<Invocations> = Arc::downgrade(invocations);
    ActionDescriptor::from_async(STOP_ALL, move |_: Arc<T>, _: NoArguments, _| {
        let (cancelled, not_cancellable) = invocations
            .upgrade()
            .map(|table| table.cancel_thing(&thing, STOP_ALL))
            .unwrap_or_default();
        if !cancelled.is_empty() || !not_cancellable.is_empty() {
            tracing::warn!(
                thing = %thing,
                stopped = cancelled.len(),
                not_cancellable = not_cancellable.len(),
                "stop_all: stopping every action of the Thing"
            );
        }
        async move {
            Ok::<_, Infallible>(Stopped {
                cancelled,
                not_cancellable,
            })
        }
    })
    .with_docs(Some(TITLE), Some(DESCRIPTION))
}
