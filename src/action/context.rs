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
    /// The server's, for an invocation it runs.
    pub(crate) environment: Option<Arc<Environment>>,
}

/// What an action can reach of the server that runs it.
pub(crate) struct Environment {
    /// Where data (recordings) is written, if anywhere.
    pub(crate) data_folder: Option<std::path::PathBuf>,
    /// Every Thing's readable properties, by Thing and property.
    pub(crate) snapshot: Box<dyn Fn() -> serde_json::Map<String, serde_json::Value> + Send + Sync>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("data_folder", &self.data_folder)
            .finish_non_exhaustive()
    }
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
///
/// `?` turns it into the error types actions commonly return besides it: a `String` message,
/// a [`Problem`](crate::Problem), a boxed error, or your own type with a `From<Cancelled>`. An
/// action that fails after it was asked to stop ends as `cancelled` whatever its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the action was cancelled")]
pub struct Cancelled;

impl From<Cancelled> for String {
    fn from(cancelled: Cancelled) -> Self {
        cancelled.to_string()
    }
}

impl From<Cancelled> for crate::Problem {
    fn from(cancelled: Cancelled) -> Self {
        crate::Problem::new(crate::problem::StatusCode::CONFLICT)
            .with_title("Cancelled")
            .with_detail(cancelled.to_string())
    }
}

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
            environment: None,
        }
    }

    /// A context that belongs to no invocation, for calling an action from Rust or in tests.
    pub fn detached() -> Self {
        Self::new(CancellationToken::new())
    }

    /// The server's data folder (`data_folder` in the configuration, `./data` by default), where
    /// actions keep files too big for a response, such as recordings; `None` when the server
    /// has none, or for a [`detached`](Self::detached) context.
    pub fn data_folder(&self) -> Option<&std::path::Path> {
        self.environment.as_ref()?.data_folder.as_deref()
    }

    /// The instrument's state now: every readable property of every Thing on the server, as
    /// `{"timestamp": "<RFC 3339>", "things": {"<thing>": {"<property>": value, ...}, ...}}`.
    /// Store it with data (a capture, a recording) so that the settings it was taken with are
    /// never lost. A property that cannot be read is left out. A
    /// [`detached`](Self::detached) context knows no Things: `things` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// # use labthings::ActionContext;
    /// let snapshot = ActionContext::detached().snapshot();
    /// assert!(snapshot["timestamp"].is_string());
    /// assert_eq!(snapshot["things"], serde_json::json!({}));
    /// ```
    pub fn snapshot(&self) -> serde_json::Value {
        let things = self
            .environment
            .as_ref()
            .map(|environment| (environment.snapshot)())
            .unwrap_or_default();
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "things": things,
        })
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

    /// Reports progress, from 0.0 to 1.0 (clamped), kept to a ten-thousandth so that it reads
    /// as written (`0.996`, not the `0.9960000000000001` a sum of steps makes). `NaN` is
    /// ignored.
    pub fn set_progress(&self, fraction: f64) {
        if fraction.is_nan() {
            return;
        }
        let mut shared = self.lock();
        shared.progress = Some((fraction.clamp(0.0, 1.0) * 1e4).round() / 1e4);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_written_and_stays_within_zero_and_one() {
        let context = ActionContext::detached();
        let sum: f64 = std::iter::repeat_n(0.004, 249).sum();
        assert_ne!(sum, 0.996, "the sum is off in its last digits");
        context.set_progress(sum);
        assert_eq!(context.lock().progress, Some(0.996));
        context.set_progress(1.5);
        assert_eq!(context.lock().progress, Some(1.0));
        context.set_progress(f64::NAN);
        assert_eq!(context.lock().progress, Some(1.0), "NaN is ignored");
    }
}
