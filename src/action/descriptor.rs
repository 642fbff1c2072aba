//! [`ActionDescriptor`]: one action of a Thing, and the two ways to make one (an async method,
//! or a blocking one that runs on a blocking thread).

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context::ActionContext;
use super::input::{InputError, parse_input};
use super::output::{ActionFailure, ActionOutput, IntoOutput, outcome};
use crate::schema::json_schema_of;

/// Implemented by `#[thing_actions]`: the actions of a Thing.
pub trait ThingActions: Sized {
    /// Every action, in declaration order.
    fn actions() -> Vec<ActionDescriptor<Self>>;
}

/// The future of one run of an action.
pub type ActionRun = BoxFuture<'static, Result<ActionOutput, ActionFailure>>;

/// Starts one run of an action, given its context.
pub type ActionStarter = Box<dyn FnOnce(ActionContext) -> ActionRun + Send>;

/// Checks an action's input and prepares a run of it.
pub type ActionPrepare<T> =
    Arc<dyn Fn(Arc<T>, Value) -> Result<ActionStarter, InputError> + Send + Sync>;

/// One action of a Thing, as built by `#[thing_actions]`.
///
/// Make one with [`from_async`](Self::from_async) or [`from_blocking`](Self::from_blocking):
/// the input type gives the input schema and is checked for every call, the output type gives
/// the output schema, and the run protocol (input checking, blocking threads, outputs, errors)
/// is the library's.
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
    /// The lock its invocations hold while they run, if any: invocations of every action of
    /// the Thing holding the same lock queue instead of running side by side.
    pub lock: Option<&'static str>,
    /// Whether a running invocation can be cancelled: an async action always can (it is
    /// stopped at an `.await`), a blocking one only if it takes an [`ActionContext`] to check.
    /// A client asking to cancel one that cannot be gets `409` (one still waiting to start can
    /// always be cancelled).
    pub cancellable: bool,
    /// It runs on a blocking thread, which nothing can stop: once cancelled, it is waited for
    /// rather than dropped after the grace period.
    pub blocking: bool,
    /// Checks the input and prepares a run.
    pub prepare: ActionPrepare<T>,
    /// The unit of the output (`#[action(output_unit = "mm")]`), the TD's `output.unit`: shown
    /// by the web UI beside the output.
    pub output_unit: Option<&'static str>,
    /// Refused with `409 Conflict` while the Thing's [`Health`](crate::health::Health) is
    /// faulted (`#[action(refuse_while_faulted)]`): a move, an exposure, anything that should
    /// not run on an instrument in trouble.
    pub refuse_while_faulted: bool,
    /// A stream's recording action: its runs count against the server's recording caps.
    pub(crate) recording: bool,
}

impl<T: Send + Sync + 'static> ActionDescriptor<T> {
    /// An action run by an async function of the Thing, its input `I` (a struct of the
    /// arguments) and its context. A returned error ends the invocation as `error` with the
    /// error's message.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use labthings::action::ActionDescriptor;
    ///
    /// struct Stage;
    ///
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Move { x: i64 }
    ///
    /// let action = ActionDescriptor::<Stage>::from_async("move_x", |_stage, input: Move, _ctx| async move {
    ///     Ok::<i64, Infallible>(input.x)
    /// });
    /// assert_eq!(action.name, "move_x");
    /// assert_eq!((action.input_schema)()["required"][0], "x");
    /// ```
    pub fn from_async<I, O, E, F, Fut>(name: &'static str, run: F) -> Self
    where
        I: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        O: IntoOutput,
        E: Display + 'static,
        F: Fn(Arc<T>, I, ActionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let run = Arc::new(run);
        let prepare: ActionPrepare<T> = Arc::new(move |thing, input| {
            let input = parse_input::<I>(input)?;
            let run = run.clone();
            Ok(Box::new(move |context| -> ActionRun {
                Box::pin(async move { outcome(run(thing, input, context).await) })
            }))
        });
        Self::with_schemas(name, json_schema_of::<I>, O::schema, prepare)
    }

    /// An action run by a blocking function of the Thing (instrument code that waits on
    /// hardware): each run gets a thread of the runtime's blocking pool, so it never stalls the
    /// server. A panic in it ends the invocation as `error`.
    pub fn from_blocking<I, O, E, F>(name: &'static str, run: F) -> Self
    where
        I: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        O: IntoOutput,
        E: Display + Send + 'static,
        F: Fn(&T, I, ActionContext) -> Result<O, E> + Send + Sync + 'static,
    {
        let run = Arc::new(run);
        let prepare: ActionPrepare<T> = Arc::new(move |thing, input| {
            let input = parse_input::<I>(input)?;
            let run = run.clone();
            Ok(Box::new(move |context| -> ActionRun {
                Box::pin(
                    async move { outcome(blocking(move || run(&thing, input, context)).await) },
                )
            }))
        });
        let mut action = Self::with_schemas(name, json_schema_of::<I>, O::schema, prepare);
        action.blocking = true;
        action
    }

    /// An action from its parts: schemas and a prepare function of your own.
    pub fn with_schemas(
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
            lock: None,
            cancellable: true,
            blocking: false,
            prepare,
            output_unit: None,
            refuse_while_faulted: false,
            recording: false,
        }
    }

    /// Sets the title and description (from the method's doc comment).
    #[must_use]
    pub fn with_docs(
        mut self,
        title: Option<&'static str>,
        description: Option<&'static str>,
    ) -> Self {
        self.title = title;
        self.description = description;
        self
    }

    /// Says whether a running invocation can be cancelled (see
    /// [`cancellable`](Self::cancellable)); `#[thing_actions]` sets it from the method.
    #[must_use]
    pub fn with_cancellable(mut self, cancellable: bool) -> Self {
        self.cancellable = cancellable;
        self
    }

    /// Makes invocations of this action queue rather than run side by side (`#[action(lock)]`):
    /// the action holds a lock of its own name while it runs.
    #[must_use]
    pub fn with_lock(mut self, lock: bool) -> Self {
        self.lock = lock.then_some(self.name);
        self
    }

    /// Makes this action hold the Thing's lock `name` while it runs
    /// (`#[action(lock = "motion")]`): invocations of every action of the Thing that holds the
    /// same lock run one at a time, in the order they were invoked.
    #[must_use]
    pub fn with_named_lock(mut self, name: &'static str) -> Self {
        self.lock = Some(name);
        self
    }

    /// The unit of the output (`#[action(output_unit = "mm")]`).
    #[must_use]
    pub fn with_output_unit(mut self, unit: &'static str) -> Self {
        self.output_unit = Some(unit);
        self
    }

    /// Refuses this action with `409 Conflict` while the Thing is faulted
    /// (`#[action(refuse_while_faulted)]`); the Thing needs a `#[health]`.
    #[must_use]
    pub fn with_refuse_while_faulted(mut self, refuse: bool) -> Self {
        self.refuse_while_faulted = refuse;
        self
    }
}

/// Runs blocking work on the runtime's blocking pool. A panic in it is passed on, so that the
/// invocation ends as `error` with the panic's message.
async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the runtime shut down while a blocking action ran"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use serde_json::json;

    use super::*;

    struct Counter(std::sync::atomic::AtomicU32);

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Add {
        by: u32,
    }

    async fn run<T: Send + Sync + 'static>(
        action: &ActionDescriptor<T>,
        thing: Arc<T>,
        input: Value,
    ) -> Result<ActionOutput, ActionFailure> {
        let starter = (action.prepare)(thing, input).expect("valid input");
        starter(ActionContext::detached()).await
    }

    fn add(counter: &Counter, input: Add, _: ActionContext) -> Result<u32, Infallible> {
        let before = counter
            .0
            .fetch_add(input.by, std::sync::atomic::Ordering::SeqCst);
        Ok(before + input.by)
    }

    #[tokio::test]
    async fn a_blocking_action_runs_off_the_runtime_and_returns_json() {
        let runtime_thread = std::thread::current().id();
        let action = ActionDescriptor::from_blocking("add", move |c: &Counter, i: Add, ctx| {
            assert_ne!(std::thread::current().id(), runtime_thread);
            add(c, i, ctx)
        });
        let counter = Arc::new(Counter(0.into()));
        let output = run(&action, counter, json!({"by": 2})).await;
        assert!(
            matches!(&output, Ok(ActionOutput::Json(v)) if *v == 2),
            "{output:?}"
        );
        assert_eq!((action.output_schema)()["type"], "integer");
    }

    #[tokio::test]
    async fn a_panic_in_a_blocking_action_is_passed_on() {
        let action = ActionDescriptor::from_blocking(
            "boom",
            |_: &Counter, _: Add, _| -> Result<(), Infallible> { panic!("the motor caught fire") },
        );
        let starter = (action.prepare)(Arc::new(Counter(0.into())), json!({"by": 1})).unwrap();
        let panic = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(starter(
            ActionContext::detached(),
        )))
        .await
        .unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the motor caught fire"));
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_anything_runs() {
        let action = ActionDescriptor::from_async("add", |_: Arc<Counter>, _: Add, _| async {
            Ok::<(), Infallible>(())
        });
        let Err(error) = (action.prepare)(Arc::new(Counter(0.into())), json!({})) else {
            panic!("accepted an input without `by`");
        };
        assert_eq!(error.field, "by");
    }
}
