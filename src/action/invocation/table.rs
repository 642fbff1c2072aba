//! [`Invocations`]: the table of a server's invocations, which starts, runs, cancels, finishes
//! and forgets them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::super::context::ActionContext;
use super::super::descriptor::ActionRun;
use super::super::output::{ActionFailure, ActionOutput};
use super::super::status::InvocationStatus;
use super::entry::{
    ActionEvent, CANCELLED_TYPE, Cancel, Invocation, InvocationOptions, RunOptions, State,
};
use crate::Problem;

/// The most finished invocations kept (within the retention time); the oldest go first.
pub(crate) const MAX_FINISHED: usize = 10_000;

/// Every invocation the server knows, oldest first; finished ones are kept for a while.
pub(crate) struct Invocations {
    list: Mutex<VecDeque<Arc<Invocation>>>,
    events: tokio::sync::broadcast::Sender<ActionEvent>,
    retention: Duration,
    /// How long a cancelled action may take to notice before it is dropped.
    grace: Duration,
    /// Invocations started since the server was built.
    started: std::sync::atomic::AtomicU64,
    /// The most bytes finished invocations' outputs may hold in memory together.
    output_budget: std::sync::atomic::AtomicUsize,
    /// The bytes they hold now (changed with the list locked).
    retained: std::sync::atomic::AtomicUsize,
    /// Set when the server shuts down: invocations started after it are cancelled at once.
    closed: std::sync::atomic::AtomicBool,
    /// What actions can reach of the server (data folder, every Thing's state); set once
    /// every Thing is assembled.
    environment: std::sync::OnceLock<Arc<super::super::context::Environment>>,
}

impl Invocations {
    pub(crate) fn new(retention: Duration, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            list: Mutex::new(VecDeque::new()),
            events: tokio::sync::broadcast::Sender::new(1024),
            retention,
            grace,
            started: std::sync::atomic::AtomicU64::new(0),
            output_budget: std::sync::atomic::AtomicUsize::new(usize::MAX),
            retained: std::sync::atomic::AtomicUsize::new(0),
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
    pub(crate) fn set_environment(&self, environment: super::super::context::Environment) {
        let _ = self.environment.set(Arc::new(environment));
    }

    /// Sets the most bytes finished invocations' outputs may hold in memory together; past
    /// it, the oldest outputs are dropped (the newest is always kept).
    pub(crate) fn set_output_budget(&self, bytes: usize) {
        self.output_budget
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The bytes finished invocations' outputs hold in memory now.
    pub(crate) fn retained_output_bytes(&self) -> usize {
        self.retained.load(std::sync::atomic::Ordering::Relaxed)
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
                output_bytes: 0,
                dropped: None,
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
        tokio::spawn(drive(self.clone(), invocation.clone(), run, options, grace));
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
            let state = invocation.lock();
            let keep = state
                .finished_at
                .is_none_or(|finished| now.duration_since(finished) < self.retention);
            if !keep {
                self.forget_output(state.output_bytes);
            }
            keep
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
                    self.forget_output(invocation.lock().output_bytes);
                }
                !drop
            });
        }
    }

    /// An output of `bytes` is no longer held (with the list locked).
    fn forget_output(&self, bytes: usize) {
        let retained = self.retained.load(std::sync::atomic::Ordering::Relaxed);
        self.retained.store(
            retained.saturating_sub(bytes),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Drops the oldest outputs until those held fit the budget, keeping `newest`'s (with
    /// the list locked). Their invocations stay; their output links answer 410.
    fn keep_within_budget(&self, list: &VecDeque<Arc<Invocation>>, newest: &Arc<Invocation>) {
        let budget = self
            .output_budget
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut retained = self.retained.load(std::sync::atomic::Ordering::Relaxed);
        let mut dropped = 0usize;
        for invocation in list {
            if retained <= budget {
                break;
            }
            if Arc::ptr_eq(invocation, newest) {
                continue;
            }
            let mut state = invocation.lock();
            if state.output_bytes == 0 {
                continue;
            }
            if let Some(output) = state.output.take() {
                state.dropped = Some(output.media_type().to_owned());
                retained = retained.saturating_sub(state.output_bytes);
                state.output_bytes = 0;
                dropped += 1;
            }
        }
        self.retained
            .store(retained, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            tracing::info!(
                dropped,
                budget_bytes = budget,
                "outputs of older invocations dropped to keep those held within \
                 `invocation_output_budget`"
            );
        }
    }

    /// Asks every unfinished invocation of `thing` to stop, but those of the action `except`
    /// (the one asking); returns the ids asked, and those running that cannot be stopped.
    pub(crate) fn cancel_thing(&self, thing: &str, except: &str) -> (Vec<String>, Vec<String>) {
        let (mut cancelled, mut refused) = (Vec::new(), Vec::new());
        for invocation in self.lock_list().iter() {
            if invocation.thing != thing || invocation.action == except {
                continue;
            }
            match invocation.cancel() {
                Cancel::Requested => cancelled.push(invocation.id.clone()),
                Cancel::NotCancellable => refused.push(invocation.id.clone()),
                Cancel::Finished(_) => {}
            }
        }
        (cancelled, refused)
    }

    fn lock_list(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Invocation>>> {
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs one invocation to its end and records how it ended.
async fn drive(
    table: Arc<Invocations>,
    invocation: Arc<Invocation>,
    run: ActionRun,
    options: RunOptions,
    grace: Duration,
) {
    let cancel = invocation.context.cancel.clone();
    let _guard = match options.lock {
        Some(lock) => tokio::select! {
            guard = lock.lock_owned() => Some(guard),
            () = cancel.cancelled() => {
                finish(&table, &invocation, Outcome::Cancelled);
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
    finish(&table, &invocation, outcome);
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
            Ok(Err(ActionFailure::Error { .. } | ActionFailure::Problem(_)))
                if cancel_requested =>
            {
                Self::Cancelled
            }
            Ok(Err(ActionFailure::Problem(problem))) => Self::Failed(*problem),
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

fn finish(table: &Invocations, invocation: &Arc<Invocation>, outcome: Outcome) {
    // The list first, then the invocation: the order `prune` takes them in.
    let list = table.lock_list();
    let status = {
        let mut state = invocation.lock();
        state.time_completed = Some(Utc::now());
        state.finished_at = Some(Instant::now());
        match outcome {
            Outcome::Completed(output) => {
                state.output_bytes = output.retained_bytes();
                table
                    .retained
                    .fetch_add(state.output_bytes, std::sync::atomic::Ordering::Relaxed);
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
    table.keep_within_budget(&list, invocation);
    drop(list);
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
            if invocations.started().is_multiple_of(1000) {
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
    async fn outputs_past_the_budget_are_dropped_oldest_first_and_the_newest_is_kept() {
        let invocations = Invocations::new(Duration::from_secs(600), Duration::from_millis(50));
        invocations.set_output_budget(1000);
        let blob = |bytes: usize| {
            move |_: ActionContext| -> ActionRun {
                Box::pin(async move {
                    Ok(ActionOutput::Blob(crate::action::Blob::new(
                        vec![7u8; bytes],
                        "application/octet-stream",
                    )))
                })
            }
        };
        let mut done = Vec::new();
        for _ in 0..5 {
            let invocation =
                invocations.start("cam", "grab", json!({}), RunOptions::default(), blob(400));
            assert!(invocation.wait(Duration::from_secs(5)).await);
            done.push(invocation);
        }
        // Two of 400 bytes fit in 1000: the three oldest went, oldest first.
        assert_eq!(invocations.retained_output_bytes(), 800);
        let dropped: Vec<bool> = done.iter().map(|i| i.output_dropped()).collect();
        assert_eq!(dropped, [true, true, true, false, false]);
        assert!(done[0].output().is_none());
        assert!(done[4].output().is_some());
        // One output larger than the whole budget is kept (the newest), the others go.
        let big = invocations.start("cam", "grab", json!({}), RunOptions::default(), blob(5000));
        assert!(big.wait(Duration::from_secs(5)).await);
        assert!(!big.output_dropped());
        assert_eq!(invocations.retained_output_bytes(), 5000);
        assert!(done.iter().all(|i| i.output_dropped()));
        // Forgotten invocations no longer count.
        let short = Invocations::new(Duration::ZERO, Duration::from_millis(50));
        let one = short.start("cam", "grab", json!({}), RunOptions::default(), blob(10));
        assert!(one.wait(Duration::from_secs(5)).await);
        assert_eq!(short.retained_output_bytes(), 10);
        short.prune();
        assert_eq!(short.retained_output_bytes(), 0);
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
