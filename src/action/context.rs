//! [`ActionContext`]: what a running action can ask of the framework.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Given to an action that takes it as an argument: cancellation, progress and logging into the
/// invocation's log.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use labthings::action::{ActionContext, Cancelled};
///
/// /// A scan that checks for cancellation between steps.
/// async fn scan(ctx: ActionContext, steps: u32) -> Result<u32, Cancelled> {
///     for step in 0..steps {
///         ctx.info(format!("step {step} of {steps}"));
///         ctx.set_progress(f64::from(step) / f64::from(steps));
///         ctx.sleep(Duration::from_millis(1)).await?;
///     }
///     Ok(steps)
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let ctx = ActionContext::detached();
/// assert_eq!(scan(ctx.clone(), 3).await, Ok(3));
/// assert_eq!(ctx.log().len(), 3);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ActionContext {
    pub(crate) cancel: CancellationToken,
    pub(crate) shared: Arc<Mutex<Progress>>,
}

/// What an invocation has reported so far.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) log: Vec<LogRecord>,
    pub(crate) progress: Option<f64>,
    /// Bumped on every change, so observers can tell.
    pub(crate) version: u64,
}

/// The action was cancelled; return it (with `?`) to end the invocation as `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the action was cancelled")]
pub struct Cancelled;

/// One line of an invocation's log, in the shape LabThings clients read (Python `logging`).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LogRecord {
    /// The text.
    pub message: String,
    /// `DEBUG`, `INFO`, `WARNING` or `ERROR`.
    pub levelname: &'static str,
    /// 10, 20, 30 or 40, as in Python.
    pub levelno: u8,
    /// When it was logged.
    pub created: DateTime<Utc>,
}

impl ActionContext {
    pub(crate) fn new(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            shared: Arc::default(),
        }
    }

    /// A context that belongs to no invocation, for calling an action from Rust or in tests.
    pub fn detached() -> Self {
        Self::new(CancellationToken::new())
    }

    /// Whether a client asked to cancel this invocation.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when a client asks to cancel this invocation.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// `Err(Cancelled)` if a client asked to cancel; use between steps: `ctx.check()?`.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] once cancellation was requested.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps, waking early if the invocation is cancelled.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if it was cancelled before or during the sleep.
    pub async fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.check(),
            () = self.cancel.cancelled() => Err(Cancelled),
        }
    }

    /// Reports progress, from 0.0 to 1.0 (clamped).
    pub fn set_progress(&self, fraction: f64) {
        let mut shared = self.lock();
        shared.progress = Some(fraction.clamp(0.0, 1.0));
        shared.version += 1;
    }

    /// Adds a line to the invocation's log at `DEBUG` level.
    pub fn debug(&self, message: impl Into<String>) {
        self.push("DEBUG", 10, message.into());
    }

    /// Adds a line to the invocation's log at `INFO` level.
    pub fn info(&self, message: impl Into<String>) {
        self.push("INFO", 20, message.into());
    }

    /// Adds a line to the invocation's log at `WARNING` level.
    pub fn warn(&self, message: impl Into<String>) {
        self.push("WARNING", 30, message.into());
    }

    /// Adds a line to the invocation's log at `ERROR` level.
    pub fn error(&self, message: impl Into<String>) {
        self.push("ERROR", 40, message.into());
    }

    /// The log so far.
    pub fn log(&self) -> Vec<LogRecord> {
        self.lock().log.clone()
    }

    fn push(&self, levelname: &'static str, levelno: u8, message: String) {
        tracing::info!(target: "labthings::action", level = levelname, "{message}");
        let mut shared = self.lock();
        shared.log.push(LogRecord {
            message,
            levelname,
            levelno,
            created: Utc::now(),
        });
        shared.version += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
