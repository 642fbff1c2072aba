//! Actions: `POST /{thing}/{action}` (invoke) and `GET /{thing}/{action}` (its invocations),
//! their OpenAPI operations, and their TD action affordances. The invocation routes shared by
//! every action are in `server/invocations.rs`.

use crate::server::forwarded::Reached;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::{Affordance, Serving};
use crate::Problem;
use crate::action::{
    ActionDescriptor, ActionOutput, ActionPrepare, ActionRun, ActionStarter, Invocation,
    Invocations, RunOptions,
};
use crate::health::Health;
use crate::layout;
use crate::openapi::{self, RouteDoc};
use crate::problem::PROBLEM_JSON;
use crate::server::base::Base;
use crate::server::error::ServerError;
use crate::server::{invocations, problems};
use crate::thing::ThingDescriptor;

/// The longest `?wait=` a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Actions: `POST`/`GET /{thing}/{action}`, and the TD's `actions`.
pub(crate) struct Actions;

impl Affordance for Actions {
    fn names<T>(descriptor: &ThingDescriptor<T>) -> Vec<&'static str> {
        descriptor.actions.iter().map(|a| a.name).collect()
    }

    fn serve<T: Send + Sync + 'static>(at: &mut Serving<'_, T>) -> Result<(), ServerError> {
        let mut locks = Locks::new();
        let descriptor = at.descriptor;
        for action in &descriptor.actions {
            serve_one(at, action, &mut locks);
        }
        Ok(())
    }
}

/// Serves one action: its routes, their documentation and its TD affordance.
fn serve_one<T: Send + Sync + 'static>(
    at: &mut Serving<'_, T>,
    action: &ActionDescriptor<T>,
    locks: &mut Locks,
) {
    let (thing_name, thing, context) = (at.name, at.thing, at.context);
    // The Thing's health, for an action that refuses to run while it is faulted.
    let health: Option<Health> = at
        .descriptor
        .health
        .filter(|_| action.refuse_while_faulted)
        .map(|health| health(thing).clone());
    let path = layout::affordance(thing_name, action.name);
    let state = Arc::new(ActionRoute {
        thing: thing.clone(),
        thing_name: thing_name.to_owned(),
        name: action.name,
        prepare: action.prepare.clone(),
        lock: action
            .lock
            .map(|name| locks.entry(name).or_default().clone()),
        cancellable: action.cancellable,
        blocking: action.blocking,
        invocations: context.invocations.clone(),
        base: context.base.clone(),
        limit: action
            .recording
            .then(|| context.recordings.for_one_stream(thing_name, action.name)),
        health,
    });
    at.routes.route(
        &path,
        post(invoke::<T>).get(list::<T>).with_state(state.clone()),
        docs(thing_name, action, &path),
    );
    let run_path = layout::run(&path);
    at.routes.route(
        &run_path,
        post(run::<T>).with_state(state),
        [run_doc(thing_name, action, &run_path)],
    );
    at.td
        .actions
        .insert(action.name.to_owned(), affordance(action, &path));
}

/// A Thing's action locks, by name (see [`ActionDescriptor::lock`]).
type Locks = std::collections::HashMap<&'static str, Arc<tokio::sync::Mutex<()>>>;

/// What the handlers of one action need.
struct ActionRoute<T> {
    thing: Arc<T>,
    thing_name: String,
    name: &'static str,
    prepare: ActionPrepare<T>,
    /// Held while an invocation runs, for `#[action(lock)]` (shared by the Thing's actions
    /// that name the same lock).
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    cancellable: bool,
    blocking: bool,
    invocations: Arc<Invocations>,
    base: Base,
    /// The caps this action's runs count against (a recording's).
    limit: Option<RunLimit>,
    /// The Thing's health, for an action refused while it is faulted.
    health: Option<Health>,
}

/// The caps on running recordings (`max_recordings`, `max_recordings_per_stream`).
#[derive(Debug, Clone)]
pub(crate) struct Recordings {
    server: Arc<tokio::sync::Semaphore>,
    max: usize,
    per_stream: usize,
}

impl Recordings {
    pub(crate) fn new(max: usize, per_stream: usize) -> Self {
        Self {
            server: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            per_stream,
        }
    }

    /// The caps of one stream's recording action.
    fn for_one_stream(&self, thing: &str, action: &str) -> RunLimit {
        RunLimit {
            what: format!("`{thing}/{action}`"),
            own: Arc::new(tokio::sync::Semaphore::new(self.per_stream)),
            own_max: self.per_stream,
            all: self.clone(),
        }
    }
}

/// Places for an action's runs: its own, and among every recording of the server. A run
/// holds one of each until it ends.
struct RunLimit {
    what: String,
    own: Arc<tokio::sync::Semaphore>,
    own_max: usize,
    all: Recordings,
}

/// How soon a client refused for a full cap is told to try again, in seconds.
const RECORDING_RETRY_AFTER: &str = "5";

impl RunLimit {
    /// A place for one more run, or the `503` saying which cap is full.
    fn take(&self) -> Result<[tokio::sync::OwnedSemaphorePermit; 2], Box<Response>> {
        let busy = |detail: String| {
            tracing::warn!(action = %self.what, "{detail}");
            Box::new(
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .with_title("Too many recordings")
                    .with_detail(detail)
                    .with_header(
                        header::RETRY_AFTER,
                        HeaderValue::from_static(RECORDING_RETRY_AFTER),
                    )
                    .into_response(),
            )
        };
        let own = self.own.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "{} is already running {} recordings of this stream, the most allowed \
                 (`max_recordings_per_stream`); cancel one, or try again when one ends.",
                self.what, self.own_max
            ))
        })?;
        let all = self.all.server.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "The server is already running {} recordings, the most allowed \
                 (`max_recordings`); cancel one, or try again when one ends.",
                self.all.max
            ))
        })?;
        Ok([own, all])
    }
}

/// `starter`, holding `permits` for as long as its run lasts (or until it is dropped unrun).
fn holding(
    starter: ActionStarter,
    permits: [tokio::sync::OwnedSemaphorePermit; 2],
) -> ActionStarter {
    Box::new(move |context| -> ActionRun {
        let run = starter(context);
        Box::pin(async move {
            let _permits = permits;
            run.await
        })
    })
}

/// `POST`: checks the input, starts an invocation, and answers it: `201` at once, or `200`
/// once finished if the client asked to wait.
async fn invoke<T: Send + Sync + 'static>(
    State(route): State<Arc<ActionRoute<T>>>,
    reached: Reached,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (invocation, wait) = match start(&route, &headers, query.as_deref(), &body) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    let finished = match wait {
        Some(wait) => invocation.wait(wait).await,
        None => false,
    };
    let mut response = invocation_response(&route, &reached, &invocation, finished);
    if let Some(wait) = wait.filter(|_| headers.contains_key("prefer"))
        && let Ok(value) = HeaderValue::from_str(&format!("wait={}", wait.as_secs_f64()))
    {
        response.headers_mut().insert("preference-applied", value);
    }
    response
}

/// `POST .../run`: the one-call form for clients that cannot poll (WoT consumers such as
/// node-wot). Starts an invocation as `POST` does, waits for it to finish (up to `wait`, by
/// default the longest allowed), and answers as `GET /action_invocations/{id}/output` would:
/// the output itself (JSON, or a blob's bytes), or `409` with the invocation's problem if it
/// ended in error or was cancelled. An invocation still running when the wait ends is answered
/// `201` with the invocation, to follow as usual.
async fn run<T: Send + Sync + 'static>(
    State(route): State<Arc<ActionRoute<T>>>,
    reached: Reached,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (invocation, wait) = match start(&route, &headers, query.as_deref(), &body) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    if !invocation.wait(wait.unwrap_or(MAX_WAIT)).await {
        return invocation_response(&route, &reached, &invocation, false);
    }
    match invocation.output() {
        Some(ActionOutput::Json(value)) => axum::Json(value).into_response(),
        Some(ActionOutput::Blob(blob)) => invocations::blob_response(&blob, &headers).await,
        Some(ActionOutput::Array(array)) => invocations::array_response(&array, &headers, None),
        None => {
            // 409, as for the output of a failed invocation: the action's failure is not the
            // server's (no 5xx), and the body is the invocation's own problem.
            let mut problem = invocation.error().unwrap_or_else(|| {
                Problem::new(StatusCode::CONFLICT).with_detail("The invocation has no output.")
            });
            problem.status = StatusCode::CONFLICT.as_u16();
            let href = invocation.body(&route.base.url(&reached)).href;
            match HeaderValue::from_str(&href) {
                Ok(location) => problem.with_header(header::LOCATION, location),
                Err(_) => problem,
            }
            .into_response()
        }
    }
}

/// Checks the request and starts an invocation; gives the wait the client asked for.
fn start<T: Send + Sync + 'static>(
    route: &ActionRoute<T>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<(Arc<Invocation>, Option<Duration>), Box<Response>> {
    let wait =
        requested_wait(query, headers).map_err(|problem| Box::new(problem.into_response()))?;
    if let Some(health) = &route.health {
        let status = health.status();
        if status.state == crate::health::State::Faulted {
            let reason = status.reason.unwrap_or_default();
            let thing = &route.thing_name;
            return Err(Box::new(
                Problem::new(StatusCode::CONFLICT)
                    .with_title("Instrument faulted")
                    .with_detail(format!(
                        "`{thing}` is faulted ({reason}), and `{}` does not run on a faulted \
                         instrument. Deal with the cause, then clear the fault \
                         (`POST {thing}/{}`).",
                        route.name,
                        crate::health::CLEAR_FAULT
                    ))
                    .into_response(),
            ));
        }
    }
    // No body and `null` both mean "no arguments", recorded as `{}` so that the invocation's
    // `input` always fits the action's input schema.
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match problems::json_body(headers, body) {
            Ok(Value::Null) => Value::Object(Map::new()),
            Ok(value) => value,
            Err(problem) => return Err(Box::new(problem.into_response())),
        }
    };
    let starter = (route.prepare)(route.thing.clone(), input.clone()).map_err(|error| {
        let field = if error.field.is_empty() {
            "input".to_owned()
        } else {
            error.field.clone()
        };
        Box::new(
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
                .with_detail(format!(
                    "Invalid input for action `{}`: {error}.",
                    route.name
                ))
                .with_invalid_param(field, error.reason)
                .into_response(),
        )
    })?;
    // Input first (422), then room to run (503).
    let starter = match &route.limit {
        Some(limit) => holding(starter, limit.take()?),
        None => starter,
    };
    let options = RunOptions {
        lock: route.lock.clone(),
        cancellable: route.cancellable,
        blocking: route.blocking,
    };
    let invocation =
        route
            .invocations
            .start(&route.thing_name, route.name, input, options, starter);
    Ok((invocation, wait))
}

/// The invocation as JSON with its `Location`: `200` if it has finished, else `201`.
fn invocation_response<T>(
    route: &ActionRoute<T>,
    reached: &Reached,
    invocation: &Invocation,
    finished: bool,
) -> Response {
    let body = invocation.body(&route.base.url(reached));
    let status = if finished {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, axum::Json(&body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&body.href) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `GET`: this action's invocations, oldest first, a page at a time.
async fn list<T>(
    State(route): State<Arc<ActionRoute<T>>>,
    reached: Reached,
    RawQuery(query): RawQuery,
) -> Response {
    invocations::list_page(
        &route.invocations,
        Some((&route.thing_name, route.name)),
        query.as_deref(),
        &route.base.url(&reached),
        &layout::affordance(&route.thing_name, route.name),
    )
}

/// `?wait=<seconds>` or `Prefer: wait=<seconds>` (RFC 7240), capped at a minute.
fn requested_wait(
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<Duration>, Box<Problem>> {
    let mut wait = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "wait" {
            return Err(Box::new(
                Problem::new(StatusCode::BAD_REQUEST)
                    .with_detail(format!(
                        "Unknown query parameter `{name}`; actions take `wait`."
                    ))
                    .with_invalid_param(name, "is not known"),
            ));
        }
        wait = Some(value.into_owned());
    }
    if wait.is_none() {
        wait = headers
            .get_all("prefer")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .find_map(|preference| preference.trim().strip_prefix("wait=").map(str::to_owned));
    }
    let Some(wait) = wait else { return Ok(None) };
    let seconds: f64 = wait
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            Box::new(
                Problem::new(StatusCode::BAD_REQUEST)
                    .with_detail(format!("`wait` must be a number of seconds, got `{wait}`."))
                    .with_invalid_param("wait", "must be a non-negative number of seconds"),
            )
        })?;
    // Capped before conversion: a huge number of seconds does not fit a `Duration`.
    Ok(Some(Duration::from_secs_f64(
        seconds.min(MAX_WAIT.as_secs_f64()),
    )))
}

/// The OpenAPI operations: invoke, and list the invocations.
fn docs<T>(thing: &str, action: &ActionDescriptor<T>, path: &str) -> Vec<RouteDoc> {
    let summary = action.title.unwrap_or(action.name);
    let name = openapi::action_invocation_name(thing, action.name);
    let schema = openapi::action_invocation(
        thing,
        action.name,
        (action.input_schema)(),
        (action.output_schema)(),
    );
    let invocation = openapi::component(&name);
    let mut responses = request_problems();
    responses.insert(
        "200".to_owned(),
        openapi::json_response("The invocation, finished within `wait`", invocation.clone()),
    );
    responses.insert(
        "201".to_owned(),
        openapi::json_response(
            "The invocation, started; poll its `href`",
            invocation.clone(),
        ),
    );
    if action.refuse_while_faulted {
        responses.insert("409".to_owned(), openapi::problem(FAULTED));
    }
    vec![
        RouteDoc::post(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_invoke_{}", action.name),
                "summary": format!("Invoke {}: {summary}", action.name),
                "description": invoke_description(action),
                "tags": [thing],
                "parameters": [wait_parameter("Wait up to this many seconds (at most 60) for the invocation to finish; then answer 200 with it finished. Also as `Prefer: wait=<seconds>`.")],
                "requestBody": request_body(action),
                "responses": responses,
            }),
        )
        .with_schema(name, schema),
        {
            let (parameters, page) = invocations::page_docs(invocation);
            RouteDoc::get(
                path.to_owned(),
                json!({
                    "operationId": format!("{thing}_list_{}", action.name),
                    "summary": format!("Invocations of {}, oldest first, a page at a time", action.name),
                    "tags": [thing],
                    "parameters": parameters,
                    "responses": {"200": page, "400": openapi::problem("`limit` or `after` is not valid")},
                }),
            )
        },
    ]
}

/// The 409 of an action refused while its Thing is faulted.
const FAULTED: &str = "The Thing is faulted and this action does not run on a faulted instrument: the problem names the fault; `clear_fault` ends it";

/// The OpenAPI operation of `.../run`: the action's output in one call.
fn run_doc<T>(thing: &str, action: &ActionDescriptor<T>, path: &str) -> RouteDoc {
    let output = (action.output_schema)();
    let mut responses = request_problems();
    responses.insert(
        "200".to_owned(),
        if crate::action::is_blob_schema(&output) {
            json!({"description": "The output's bytes, with the media type the action gave them",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})
        } else if crate::action::is_array_schema(&output) {
            let binary = json!({"schema": {"type": "string", "format": "binary"}});
            json!({"description": "The output array: NumPy's .npy, or TIFF with `Accept: image/tiff`",
                "content": {"application/x-npy": binary, "image/tiff": binary}})
        } else {
            openapi::json_response("The output", output)
        },
    );
    responses.insert(
        "201".to_owned(),
        openapi::json_response(
            "Still running when the wait ended: the invocation, to poll as usual",
            openapi::component(&openapi::action_invocation_name(thing, action.name)),
        ),
    );
    let ended = "The action ended in error or was cancelled: the invocation's problem (its `Location` is the invocation)";
    responses.insert(
        "409".to_owned(),
        openapi::problem(&if action.refuse_while_faulted {
            format!(
                "{ended}; or {}{}",
                &FAULTED[..1].to_lowercase(),
                &FAULTED[1..]
            )
        } else {
            ended.to_owned()
        }),
    );
    RouteDoc::post(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_run_{}", action.name),
            "summary": format!("Run {} and answer its output: {}", action.name, action.title.unwrap_or(action.name)),
            "description": "Invokes the action, waits for it to finish, and answers with its output, for clients that do not poll an invocation. The invocation is kept and listed like any other.",
            "tags": [thing],
            "parameters": [wait_parameter("Wait up to this many seconds (at most 60, the default) for the action to finish.")],
            "requestBody": request_body(action),
            "responses": responses,
        }),
    )
}

/// The action's own description, and whether it can be cancelled.
fn invoke_description<T>(action: &ActionDescriptor<T>) -> String {
    let cancel = if action.cancellable {
        "A running invocation can be cancelled (`DELETE` its `href`)."
    } else {
        "Once running, an invocation cannot be cancelled (it runs to its end); one still \
         waiting to start can."
    };
    match action.description {
        Some(description) => format!("{description}\n\n{cancel}"),
        None => cancel.to_owned(),
    }
}

fn wait_parameter(description: &str) -> Value {
    json!({"name": "wait", "in": "query", "required": false, "description": description,
        "schema": {"type": "number", "minimum": 0}})
}

fn request_body<T>(action: &ActionDescriptor<T>) -> Value {
    json!({"required": false, "content": {"application/json": {"schema": (action.input_schema)()}}})
}

/// The refusals of an invocation request, shared by both ways to invoke.
fn request_problems() -> Map<String, Value> {
    [
        ("400", "The body is not JSON, or `wait` is not a number"),
        ("413", "The body is too large"),
        ("415", "The body is not sent as JSON"),
        (
            "422",
            "The input does not fit; `invalid-params` names the field",
        ),
    ]
    .into_iter()
    .map(|(status, description)| (status.to_owned(), openapi::problem(description)))
    .collect()
}

/// The TD action affordance: input and output DataSchemas, and forms to invoke, query and
/// cancel ([TD 1.1 §5.3.1.4](https://www.w3.org/TR/wot-thing-description11/#actionaffordance)).
fn affordance<T>(action: &ActionDescriptor<T>, path: &str) -> Value {
    let mut affordance = Map::new();
    if let Some(title) = action.title {
        affordance.insert("title".to_owned(), title.into());
    }
    if let Some(description) = action.description {
        affordance.insert("description".to_owned(), description.into());
    }
    affordance.insert(
        "input".to_owned(),
        crate::schema::to_td(&(action.input_schema)()),
    );
    let mut output = crate::schema::to_td(&(action.output_schema)());
    if let (Some(unit), Some(output)) = (action.output_unit, output.as_object_mut()) {
        output.insert("unit".to_owned(), unit.into());
    }
    affordance.insert("output".to_owned(), output);
    affordance.insert("safe".to_owned(), false.into());
    affordance.insert("idempotent".to_owned(), false.into());
    affordance.insert("synchronous".to_owned(), false.into());
    affordance.insert(
        "uriVariables".to_owned(),
        json!({"id": {"type": "string", "description": "An invocation id",
            "readOnly": false, "writeOnly": false}}),
    );
    let invocation = layout::invocation("{id}");
    // The second `invokeaction` form answers with the output once the action has finished (a
    // WoT consumer picks it by its index); LabThings clients take the first.
    let output_schema = (action.output_schema)();
    let output_type = if crate::action::is_blob_schema(&output_schema) {
        "application/octet-stream"
    } else if crate::action::is_array_schema(&output_schema) {
        "application/x-npy"
    } else {
        "application/json"
    };
    affordance.insert(
        "forms".to_owned(),
        json!([
            {"href": layout::relative(path), "op": ["invokeaction"],
             "htv:methodName": "POST", "contentType": "application/json"},
            {"href": layout::relative(&layout::run(path)), "op": ["invokeaction"],
             "htv:methodName": "POST", "contentType": "application/json",
             "response": {"contentType": output_type},
             "additionalResponses": [{"success": false, "contentType": PROBLEM_JSON}]},
            {"href": layout::relative(&invocation), "op": ["queryaction"], "htv:methodName": "GET",
             "contentType": "application/json"},
        ]),
    );
    // Only an action that can be stopped offers to cancel.
    if action.cancellable
        && let Some(forms) = affordance["forms"].as_array_mut()
    {
        forms.push(
            json!({"href": layout::relative(&invocation), "op": ["cancelaction"],
            "htv:methodName": "DELETE", "contentType": "application/json"}),
        );
    }
    Value::Object(affordance)
}
