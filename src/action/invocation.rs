//! Invocations: one run of an action, from request to result, and the table that keeps them.
//!
//! The two share the invocation's private state (its status channel, timestamps and output),
//! which the table's driver writes and the invocation reads; they stay in one file (about 500
//! lines with its tests) so that state stays private to it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::body::{InvocationBody, InvocationLink};
use super::context::ActionContext;
use super::descriptor::ActionRun;
use super::output::{ActionFailure, ActionOutput, BlobLink};
use crate::Problem;
use crate::layout;

/// Where an invocation is in its life. On the wire it is its name, [`as_str`](Self::as_str);
/// its JSON Schema is an `enum` of those names (what code generators turn into an enum type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationStatus {
    /// Accepted, not started (waiting for the action's lock, if it has one).
    Pending,
    /// Running.
    Running,
    /// Finished with an output.
    Completed,
    /// Stopped at a client's request.
    Cancelled,
    /// Failed (an error or a panic in the action).
    Error,
}

impl InvocationStatus {
    /// Every status, in the order of an invocation's life.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Cancelled,
        Self::Error,
    ];

    /// Whether the invocation has finished.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Error)
    }

    /// The name on the wire: `pending`, `running`, `completed`, `cancelled` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }
}

impl Serialize for InvocationStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl schemars::JsonSchema for InvocationStatus {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InvocationStatus".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|status| status.as_str()).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "Where an invocation is in its life: `pending` (waiting to start), \
                `running`, then `completed`, `cancelled` or `error`.",
            "enum": names,
        })
    }
}

impl std::fmt::Display for InvocationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
struct InvocationOptions {
    cancellable: bool,
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
    options: InvocationOptions,
    /// Its place among the server's invocations (1 for the first): the cursor of list pages.
    pub(crate) seq: u64,
    pub(crate) thing: String,
    pub(crate) action: String,
    pub(crate) context: ActionContext,
    state: Mutex<State>,
    /// Changes whenever the status changes; receivers wait for the end.
    status: watch::Sender<InvocationStatus>,
    events: tokio::sync::broadcast::Sender<ActionEvent>,
}

struct State {
    input: Value,
    time_requested: DateTime<Utc>,
    time_started: Option<DateTime<Utc>>,
    time_completed: Option<DateTime<Utc>>,
    output: Option<ActionOutput>,
    error: Option<Problem>,
    finished_at: Option<Instant>,
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
                None => Value::Null,
                Some(ActionOutput::Json(value)) => value.clone(),
                Some(ActionOutput::Blob(blob)) => {
                    let href = format!("{base}{}", layout::relative(&layout::blob(&self.id)));
                    serde_json::to_value(BlobLink::new(href, blob)).unwrap_or(Value::Null)
                }
                Some(ActionOutput::Array(array)) => {
                    let href = format!("{base}{}", layout::relative(&layout::blob(&self.id)));
                    serde_json::to_value(super::array::ArrayLink::new(href, array))
                        .unwrap_or(Value::Null)
                }
            },
            progress,
            log: self.context.log(),
            error: state.error.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_status(&self, status: InvocationStatus) {
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

/// Every invocation the server knows, oldest first; finished ones are kept for a while.
/// The most finished invocations kept (within the retention time); the oldest go first.
pub(crate) const MAX_FINISHED: usize = 10_000;

pub(crate) struct Invocations {
    list: Mutex<VecDeque<Arc<Invocation>>>,
    events: tokio::sync::broadcast::Sender<ActionEvent>,
    retention: Duration,
    /// How long a cancelled action may take to notice before it is dropped.
    grace: Duration,
    /// Invocations started since the server was built.
    started: std::sync::atomic::AtomicU64,
    /// Set when the server shuts down: invocations started after it are cancelled at once.
    closed: std::sync::atomic::AtomicBool,
    /// What actions can reach of the server (data folder, every Thing's state); set once
    /// every Thing is assembled.
    environment: std::sync::OnceLock<Arc<super::context::Environment>>,
}

impl Invocations {
    pub(crate) fn new(retention: Duration, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            list: Mutex::new(VecDeque::new()),
            events: tokio::sync::broadcast::Sender::new(1024),
            retention,
            grace,
            started: std::sync::atomic::AtomicU64::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
            environment: std::sync::OnceLock::new(),
        })
    }

    /// Shutting down: asks every unfinished invocation to stop, and any started from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let cancelled = self
            .lock_list()
            .iter()
            .filter(|invocation| invocation.cancel() == Cancel::Requested)
            .count();
        if cancelled > 0 {
            tracing::info!(
                actions = cancelled,
                "shutting down: cancelling running actions"
            );
        }
    }

    /// After [`close`](Self::close): waits until every invocation has ended, at most the
    /// cancellation grace period and a second. Cooperative actions end as `cancelled` after
    /// cleaning up; others are dropped at the await point they are waiting at.
    pub(crate) async fn drained(&self) {
        let unfinished: Vec<Arc<Invocation>> = self
            .lock_list()
            .iter()
            .filter(|invocation| !invocation.status().is_finished())
            .cloned()
            .collect();
        let bound = self.grace + Duration::from_secs(1);
        let all = futures_util::future::join_all(
            unfinished.iter().map(|invocation| invocation.wait(bound)),
        );
        if !all.await.into_iter().all(|finished| finished) {
            tracing::warn!("shutting down: an action did not end within the grace period");
        }
    }

    /// Invocations started since the server was built.
    /// Gives every later invocation's context the server's environment.
    pub(crate) fn set_environment(&self, environment: super::context::Environment) {
        let _ = self.environment.set(Arc::new(environment));
    }

    pub(crate) fn started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many invocations held now are in each status (every status listed, even at 0).
    pub(crate) fn status_counts(&self) -> Vec<(InvocationStatus, usize)> {
        let statuses: Vec<InvocationStatus> = self
            .lock_list()
            .iter()
            .map(|invocation| *invocation.status.borrow())
            .collect();
        InvocationStatus::ALL
            .into_iter()
            .map(|status| (status, statuses.iter().filter(|s| **s == status).count()))
            .collect()
    }

    /// Records an invocation and runs it on the runtime. `make` builds the action's future
    /// from its context; `lock`, if given, is held while it runs (invocations queue for it).
    pub(crate) fn start(
        self: &Arc<Self>,
        thing: &str,
        action: &str,
        input: Value,
        options: RunOptions,
        make: impl FnOnce(ActionContext) -> ActionRun,
    ) -> Arc<Invocation> {
        let mut context = ActionContext::new(CancellationToken::new());
        context.environment = self.environment.get().cloned();
        let seq = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let invocation = Arc::new(Invocation {
            id: new_id(),
            options: InvocationOptions {
                cancellable: options.cancellable,
            },
            seq,
            thing: thing.to_owned(),
            action: action.to_owned(),
            context: context.clone(),
            state: Mutex::new(State {
                input,
                time_requested: Utc::now(),
                time_started: None,
                time_completed: None,
                output: None,
                error: None,
                finished_at: None,
            }),
            status: watch::Sender::new(InvocationStatus::Pending),
            events: self.events.clone(),
        });
        invocation.set_status(InvocationStatus::Pending);
        self.prune();
        self.lock_list().push_back(invocation.clone());
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            // The server is going away: the action ends as cancelled without running.
            invocation.context.cancel.cancel();
        }
        let run = make(context);
        let grace = self.grace;
        tokio::spawn(drive(invocation.clone(), run, options, grace));
        invocation
    }

    /// Status changes of every invocation, as they happen.
    pub(crate) fn events(&self) -> tokio::sync::broadcast::Receiver<ActionEvent> {
        self.events.subscribe()
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Invocation>> {
        self.prune();
        self.lock_list().iter().find(|i| i.id == id).cloned()
    }

    /// At most `limit` invocations started after the one numbered `after` (0: from the
    /// first), oldest first, optionally of one action only; and whether more follow.
    pub(crate) fn page(
        &self,
        of: Option<(&str, &str)>,
        after: u64,
        limit: usize,
    ) -> (Vec<Arc<Invocation>>, bool) {
        self.prune();
        let list = self.lock_list();
        let mut matching = list
            .iter()
            .filter(|i| i.seq > after)
            .filter(|i| of.is_none_or(|(thing, action)| i.thing == thing && i.action == action));
        let page: Vec<Arc<Invocation>> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        (page, more)
    }

    /// Drops finished invocations older than the retention time, and the oldest finished ones
    /// beyond [`MAX_FINISHED`] (down to nine tenths of it), so that a client invoking in a
    /// loop cannot grow the table without bound.
    fn prune(&self) {
        let now = Instant::now();
        let mut list = self.lock_list();
        list.retain(|invocation| {
            invocation
                .lock()
                .finished_at
                .is_none_or(|finished| now.duration_since(finished) < self.retention)
        });
        // Over the cap, down to nine tenths of it, so that the count is not taken on every
        // start once a busy server is at the cap.
        let finished = if list.len() > MAX_FINISHED {
            list.iter().filter(|i| i.status().is_finished()).count()
        } else {
            0
        };
        if finished > MAX_FINISHED {
            let mut excess = finished - MAX_FINISHED * 9 / 10;
            list.retain(|invocation| {
                let drop = excess > 0 && invocation.status().is_finished();
                if drop {
                    excess -= 1;
                }
                !drop
            });
        }
    }

    fn lock_list(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Invocation>>> {
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs one invocation to its end and records how it ended.
async fn drive(invocation: Arc<Invocation>, run: ActionRun, options: RunOptions, grace: Duration) {
    let cancel = invocation.context.cancel.clone();
    let _guard = match options.lock {
        Some(lock) => tokio::select! {
            guard = lock.lock_owned() => Some(guard),
            () = cancel.cancelled() => {
                finish(&invocation, Outcome::Cancelled);
                return;
            }
        },
        None => None,
    };
    invocation.lock().time_started = Some(Utc::now());
    invocation.set_status(InvocationStatus::Running);
    // A panic in the action becomes an `error` invocation; the server goes on.
    let run = std::panic::AssertUnwindSafe(run).catch_unwind();
    tokio::pin!(run);
    let outcome = tokio::select! {
        result = &mut run => Outcome::from_result(result, cancel.is_cancelled()),
        () = cancel.cancelled() => {
            if options.blocking {
                // Nothing stops a blocking thread: it ends when the action notices (or
                // finishes anyway, and then it has completed), and the invocation says so.
                Outcome::from_result((&mut run).await, true)
            } else {
                // Give a cooperative action time to notice and clean up; then drop its
                // future, which stops an async action at the await point it is waiting at.
                match tokio::time::timeout(grace, &mut run).await {
                    Ok(result) => Outcome::from_result(result, true),
                    Err(_) => Outcome::Cancelled,
                }
            }
        }
    };
    finish(&invocation, outcome);
}

enum Outcome {
    Completed(ActionOutput),
    Cancelled,
    Failed(Problem),
}

impl Outcome {
    fn from_result(
        result: Result<Result<ActionOutput, ActionFailure>, Box<dyn std::any::Any + Send>>,
        cancel_requested: bool,
    ) -> Self {
        match result {
            Ok(Ok(output)) => Self::Completed(output),
            Ok(Err(ActionFailure::Cancelled)) => Self::Cancelled,
            // An action that fails after being asked to stop failed because of it (it returned
            // `Cancelled` from `ctx.check()` or `ctx.sleep()`, or its own error on the way out).
            Ok(Err(ActionFailure::Error { .. })) if cancel_requested => Self::Cancelled,
            Ok(Err(ActionFailure::Error { kind, message })) => Self::Failed(
                Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                    .with_title(kind)
                    .with_detail(message),
            ),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                Self::Failed(
                    Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                        .with_title("panic")
                        .with_detail(format!("the action panicked: {message}")),
                )
            }
        }
    }
}

fn finish(invocation: &Invocation, outcome: Outcome) {
    let status = {
        let mut state = invocation.lock();
        state.time_completed = Some(Utc::now());
        state.finished_at = Some(Instant::now());
        match outcome {
            Outcome::Completed(output) => {
                state.output = Some(output);
                InvocationStatus::Completed
            }
            Outcome::Cancelled => {
                state.error = Some(
                    Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                        .with_type(CANCELLED_TYPE)
                        .with_title("InvocationCancelledError")
                        .with_detail("The action was cancelled."),
                );
                InvocationStatus::Cancelled
            }
            Outcome::Failed(problem) => {
                invocation.context.error(problem.detail.clone());
                state.error = Some(problem);
                InvocationStatus::Error
            }
        }
    };
    invocation.set_status(status);
}

/// A random UUID (version 4), as labthings-fastapi uses for invocation ids.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_is_its_name_on_the_wire_and_in_its_schema() {
        for status in InvocationStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(status.to_string(), status.as_str());
        }
        let schema = crate::schema::json_schema_of::<InvocationStatus>();
        assert_eq!(
            schema["enum"],
            json!(["pending", "running", "completed", "cancelled", "error"])
        );
    }

    fn slow_action(_: ActionContext) -> ActionRun {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(ActionOutput::Json(Value::Null))
        })
    }

    #[tokio::test]
    async fn at_most_so_many_finished_invocations_are_kept() {
        let invocations = Invocations::new(Duration::from_secs(600), Duration::from_millis(50));
        let quick = |_: ActionContext| -> ActionRun {
            Box::pin(async { Ok(ActionOutput::Json(Value::Null)) })
        };
        let mut last = None;
        for _ in 0..MAX_FINISHED + 50 {
            let invocation =
                invocations.start("lab", "zero", json!({}), RunOptions::default(), quick);
            if invocations.started() % 1000 == 0 {
                // Let them finish as they go, as a client invoking in a loop would.
                invocation.wait(Duration::from_secs(5)).await;
            }
            last = Some(invocation);
        }
        assert!(last.unwrap().wait(Duration::from_secs(5)).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (kept, _) = invocations.page(None, 0, usize::MAX);
        assert!(kept.len() <= MAX_FINISHED + 1, "{} kept", kept.len());
        assert_eq!(invocations.started(), (MAX_FINISHED + 50) as u64);
        // The newest are the ones kept.
        assert_eq!(kept.last().unwrap().seq, (MAX_FINISHED + 50) as u64);
    }

    #[tokio::test]
    async fn closing_cancels_running_actions_and_any_started_later() {
        let invocations = Invocations::new(Duration::from_secs(60), Duration::from_millis(50));
        let running = invocations.start(
            "stage",
            "home",
            json!({}),
            RunOptions::default(),
            slow_action,
        );
        tokio::task::yield_now().await;
        invocations.close();
        // Started while the server shuts down: it never gets to run.
        let late = invocations.start(
            "stage",
            "home",
            json!({}),
            RunOptions::default(),
            slow_action,
        );
        let started = Instant::now();
        invocations.drained().await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(running.status(), InvocationStatus::Cancelled);
        assert_eq!(late.status(), InvocationStatus::Cancelled);
    }
}
