//! One invocation: its identity, options, state and status channel, and its body as clients
//! see it. The table (`table.rs`) drives it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::watch;

use super::super::body::{InvocationBody, InvocationLink};
use super::super::context::ActionContext;
use super::super::output::{ActionOutput, BlobLink};
use super::super::status::InvocationStatus;
use crate::Problem;
use crate::layout;

/// The problem type of a cancelled invocation: labthings-fastapi's URI for it, which its Python
/// `ThingClient` recognises to raise `InvocationCancelledError` (rather than a generic
/// `ServerActionError`).
pub(crate) const CANCELLED_TYPE: &str = "https://labthings-fastapi.readthedocs.io/en/latest/autoapi/labthings_fastapi/exceptions/index.html#labthings_fastapi.exceptions.InvocationCancelledError";

/// A change of an invocation's status, for websocket observers.
#[derive(Debug, Clone)]
pub(crate) struct ActionEvent {
    pub(crate) thing: String,
    pub(crate) action: String,
    pub(crate) id: String,
    pub(crate) status: InvocationStatus,
}

/// One invocation.
/// What asking an invocation to stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// The action was asked to stop (it ends as `cancelled` once it does).
    Requested,
    /// It had already finished, with this status.
    Finished(InvocationStatus),
    /// It is running and cannot be stopped (a blocking action without a context).
    NotCancellable,
}

/// What an invocation remembers of its [`RunOptions`].
pub(super) struct InvocationOptions {
    pub(super) cancellable: bool,
}

/// How an invocation runs: by default without a lock, cancellable, not blocking.
pub(crate) struct RunOptions {
    /// Held while it runs (`#[action(lock)]`): invocations holding the same lock queue.
    pub(crate) lock: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Whether it can be cancelled once running.
    pub(crate) cancellable: bool,
    /// It runs on a blocking thread: once cancelled it is waited for, never dropped.
    pub(crate) blocking: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            lock: None,
            cancellable: true,
            blocking: false,
        }
    }
}

pub(crate) struct Invocation {
    pub(crate) id: String,
    pub(super) options: InvocationOptions,
    /// Its place among the server's invocations (1 for the first): the cursor of list pages.
    pub(crate) seq: u64,
    pub(crate) thing: String,
    pub(crate) action: String,
    pub(crate) context: ActionContext,
    pub(super) state: Mutex<State>,
    /// Changes whenever the status changes; receivers wait for the end.
    pub(super) status: watch::Sender<InvocationStatus>,
    pub(super) events: tokio::sync::broadcast::Sender<ActionEvent>,
}

pub(super) struct State {
    pub(super) input: Value,
    pub(super) time_requested: DateTime<Utc>,
    pub(super) time_started: Option<DateTime<Utc>>,
    pub(super) time_completed: Option<DateTime<Utc>>,
    pub(super) output: Option<ActionOutput>,
    /// What `output` holds in memory, counted against the server's output budget.
    pub(super) output_bytes: usize,
    /// The media type of the output, once it was dropped for the output budget.
    pub(super) dropped: Option<String>,
    pub(super) error: Option<Problem>,
    pub(super) finished_at: Option<Instant>,
}

impl Invocation {
    pub(crate) fn status(&self) -> InvocationStatus {
        *self.status.borrow()
    }

    /// Waits until the invocation finishes or `timeout` passes; true if it finished.
    pub(crate) async fn wait(&self, timeout: Duration) -> bool {
        let mut status = self.status.subscribe();
        tokio::time::timeout(timeout, status.wait_for(|s| s.is_finished()))
            .await
            .is_ok()
    }

    /// Asks the action to stop, if it can.
    pub(crate) fn cancel(&self) -> Cancel {
        let status = self.status();
        if status.is_finished() {
            return Cancel::Finished(status);
        }
        if status == InvocationStatus::Running && !self.options.cancellable {
            return Cancel::NotCancellable;
        }
        self.context.cancel.cancel();
        Cancel::Requested
    }

    pub(crate) fn output(&self) -> Option<ActionOutput> {
        self.lock().output.clone()
    }

    /// Whether its output was dropped to keep retained outputs within the server's budget.
    pub(crate) fn output_dropped(&self) -> bool {
        self.lock().dropped.is_some()
    }

    /// Why it ended as `error` or `cancelled`.
    pub(crate) fn error(&self) -> Option<Problem> {
        self.lock().error.clone()
    }

    /// The invocation's body, with URLs under `base` (ending in `/`).
    pub(crate) fn body(&self, base: &str) -> InvocationBody {
        let state = self.lock();
        let href = format!("{base}{}", layout::relative(&layout::invocation(&self.id)));
        let progress = self
            .context
            .shared
            .lock()
            .map(|p| p.progress)
            .unwrap_or_default();
        InvocationBody {
            status: self.status(),
            id: self.id.clone(),
            action: format!(
                "{}{}",
                base_path(base),
                layout::relative(&layout::affordance(&self.thing, &self.action))
            ),
            thing: self.thing.clone(),
            links: vec![
                InvocationLink {
                    href: href.clone(),
                    rel: "self",
                },
                InvocationLink {
                    href: format!(
                        "{base}{}",
                        layout::relative(&layout::invocation_output(&self.id))
                    ),
                    rel: "output",
                },
            ],
            href,
            time_requested: time(state.time_requested),
            time_started: state.time_started.map(time),
            time_completed: state.time_completed.map(time),
            input: state.input.clone(),
            output: match &state.output {
                // Still a link, so that a client following it learns why (410), rather than
                // reading a missing output as `null`.
                None if state.dropped.is_some() => serde_json::json!({
                    "href": format!(
                        "{base}{}",
                        layout::relative(&layout::invocation_output(&self.id))
                    ),
                    "media_type": state.dropped,
                    "rel": "output",
                    "description": "This output was dropped to keep the outputs the server \
                                    holds within its memory budget; its link answers 410.",
                }),
                None => Value::Null,
                Some(ActionOutput::Json(value)) => value.clone(),
                Some(ActionOutput::Blob(blob)) => {
                    let href = format!("{base}{}", layout::relative(&layout::blob(&self.id)));
                    serde_json::to_value(BlobLink::new(href, blob)).unwrap_or(Value::Null)
                }
                Some(ActionOutput::Array(array)) => {
                    let href = format!("{base}{}", layout::relative(&layout::blob(&self.id)));
                    serde_json::to_value(super::super::array::ArrayLink::new(href, array))
                        .unwrap_or(Value::Null)
                }
            },
            progress,
            log: self.context.log(),
            error: state.error.clone(),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn set_status(&self, status: InvocationStatus) {
        self.status.send_replace(status);
        // No observer is fine; a lagging one loses its oldest events, never blocks this.
        let _ = self.events.send(ActionEvent {
            thing: self.thing.clone(),
            action: self.action.clone(),
            id: self.id.clone(),
            status,
        });
    }
}

/// The path part of `base` (`http://host:5000/api/` → `/api/`).
fn base_path(base: &str) -> &str {
    let without_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    without_scheme
        .find('/')
        .map_or("/", |at| &without_scheme[at..])
}

/// RFC 3339 in UTC with microseconds, as labthings-fastapi sends.
fn time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}
