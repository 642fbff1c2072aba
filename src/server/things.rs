//! [`ThingServer`]: Things, their routes, Thing Descriptions, OpenAPI document and lifecycle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::problems::{self, not_found};
use super::{actions, ui, ws};
use crate::Problem;
use crate::action::Invocations;
use crate::openapi::{self, RouteDoc};
use crate::property::settings::SettingsFile;
use crate::property::{Binding, Persist, PropertyError};
use crate::stream::{self, MjpegStream};
use crate::td::{TD_MEDIA_TYPE, ThingDescription};
use crate::thing::{BoxError, Thing, ThingDescriptor};

/// Names a Thing cannot have: the server's own routes.
const RESERVED_NAMES: &[&str] = &[
    "things",
    "thing_descriptions",
    "openapi.json",
    "docs",
    "action_invocations",
    "blob",
    "static",
];

/// Why a server could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A Thing name is not a valid URL segment or is reserved.
    #[error("invalid Thing name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is not allowed.
        reason: String,
    },
    /// Two Things were given the same name.
    #[error("two Things are named {0:?}")]
    DuplicateName(String),
    /// A Thing (or one of its properties) was added to a server twice.
    #[error("a property of Thing {thing:?} already belongs to a server; each Thing is added once")]
    AlreadyAdded {
        /// The Thing.
        thing: String,
    },
    /// An allowed origin is not `scheme://host[:port]`.
    #[error(
        "invalid CORS origin {0:?}: expected scheme://host[:port], such as http://lab-ui.local:8080"
    )]
    InvalidOrigin(String),
    /// Two affordances of a Thing (an action and a property, say) have the same name.
    #[error("Thing {thing:?} has two affordances named {affordance:?}")]
    DuplicateAffordance {
        /// The Thing.
        thing: String,
        /// The name used twice.
        affordance: String,
    },
    /// The API prefix is not of the form `/segment/...`.
    #[error("invalid API prefix {0:?}: it must start with `/` and not end with one")]
    InvalidPrefix(String),
    /// The OpenAPI document could not be built.
    #[error("{0}")]
    OpenApi(String),
    /// A Thing's start hook failed.
    #[error("Thing {thing:?} failed to start: {error}")]
    Start {
        /// The Thing.
        thing: String,
        /// What its start hook said.
        error: BoxError,
    },
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A Thing, or an `Arc` of one: what [`ThingServerBuilder::add_thing`] takes.
pub trait IntoShared<T> {
    /// The Thing behind an `Arc`.
    fn into_shared(self) -> Arc<T>;
}

impl<T: Thing> IntoShared<T> for T {
    fn into_shared(self) -> Arc<T> {
        Arc::new(self)
    }
}

impl<T: Thing> IntoShared<T> for Arc<T> {
    fn into_shared(self) -> Arc<T> {
        self
    }
}

/// Builds a [`ThingServer`]; from [`ThingServer::builder`].
#[must_use]
pub struct ThingServerBuilder {
    api_prefix: String,
    settings_folder: Option<PathBuf>,
    public_url: Option<String>,
    cors: Option<tower_http::cors::CorsLayer>,
    retention: std::time::Duration,
    grace: std::time::Duration,
    ui: ui::UiSource,
    folders: Vec<(String, PathBuf)>,
    things: Vec<Pending>,
    errors: Vec<ServerError>,
}

impl std::fmt::Debug for ThingServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThingServerBuilder")
            .field("api_prefix", &self.api_prefix)
            .field("settings_folder", &self.settings_folder)
            .field("public_url", &self.public_url)
            .field(
                "things",
                &self.things.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

type Attach = Box<dyn FnOnce(&Context) -> Result<Parts, ServerError> + Send>;

struct Pending {
    name: String,
    attach: Attach,
}

/// What a Thing's routes need to know about the server.
struct Context {
    settings_folder: Option<PathBuf>,
    invocations: Arc<Invocations>,
    base: Base,
}

/// One Thing, assembled.
struct Parts {
    name: String,
    router: Router,
    docs: Vec<RouteDoc>,
    description: ThingDescription,
    lifecycle: Arc<dyn Lifecycle>,
    streams: Vec<MjpegStream>,
    settings: Option<Arc<SettingsFile>>,
}

trait Lifecycle: Send + Sync {
    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>>;
    fn stop(&self) -> BoxFuture<'_, ()>;
}

impl<T: Thing> Lifecycle for T {
    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(Thing::start(self))
    }
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(Thing::stop(self))
    }
}

impl ThingServerBuilder {
    /// Serves `thing` under `/<name>/`.
    ///
    /// Names are URL segments: letters, digits, `_` and `-`, and not one of the server's own
    /// routes (`things`, `thing_descriptions`, `docs`, ...). A bad name is reported by
    /// [`build`](Self::build).
    ///
    /// Pass an `Arc` to keep a handle: another Thing (or your own code) can hold a clone and
    /// read the Thing's properties, which is how Things work together without global state.
    pub fn add_thing<T: Thing>(
        mut self,
        name: impl Into<String>,
        thing: impl IntoShared<T>,
    ) -> Self {
        let name = name.into();
        if let Err(reason) = validate_name(&name) {
            self.errors.push(ServerError::InvalidName { name, reason });
            return self;
        }
        if self.things.iter().any(|pending| pending.name == name) {
            self.errors.push(ServerError::DuplicateName(name));
            return self;
        }
        let thing: Arc<T> = thing.into_shared();
        let attach_name = name.clone();
        self.things.push(Pending {
            name,
            attach: Box::new(move |context| attach(attach_name, thing, context)),
        });
        self
    }

    /// Serves everything under this prefix (`/api/v3`); default none.
    pub fn api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.api_prefix = prefix.into();
        self
    }

    /// Where settings are kept: `<folder>/<thing>/settings.json`. Without a folder, settings
    /// behave as plain properties and are not persisted.
    pub fn settings_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.settings_folder = Some(folder.into());
        self
    }

    /// The URL clients reach the server at (`https://lab.example/microscope/`), used as the
    /// `base` of Thing Descriptions. By default `base` is built from each request's `Host`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        let mut url = url.into();
        if !url.ends_with('/') {
            url.push('/');
        }
        self.public_url = Some(url);
        self
    }

    /// Serves your own web UI instead of the built-in one: `index.html` at `/` and the
    /// folder's `static/` at `/static/` (the layout of this project's `static/`).
    pub fn ui_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.ui = ui::UiSource::Folder(folder.into());
        self
    }

    /// Serves no web UI at all (an API-only server).
    pub fn without_ui(mut self) -> Self {
        self.ui = ui::UiSource::None;
        self
    }

    /// Serves the files of `folder` at `url_path` (`/data`), beside the UI and the API.
    pub fn serve_folder(mut self, url_path: impl Into<String>, folder: impl Into<PathBuf>) -> Self {
        let path = url_path.into();
        if !path.starts_with('/') || path.ends_with('/') || path.len() < 2 {
            self.errors.push(ServerError::InvalidPrefix(path));
        } else {
            self.folders.push((path, folder.into()));
        }
        self
    }

    /// How long finished invocations (and their outputs and blobs) are kept; default 5 min.
    pub fn invocation_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long a cancelled action may take to stop by itself before its future is dropped
    /// (which stops an async action at the `.await` it is waiting at); default 2 s.
    pub fn cancellation_grace(mut self, grace: std::time::Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Lets web pages from these origins (`"http://lab-ui.local:8080"`) use the API: reads,
    /// writes and streams, with `Content-Type` and `Authorization` headers, no cookies. Off by
    /// default: only pages served by this server itself can use it. An origin that is not
    /// `scheme://host[:port]` is reported by [`build`](Self::build).
    pub fn allow_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = Vec::new();
        for origin in origins {
            let origin = origin.as_ref();
            let trimmed = origin.trim_end_matches('/');
            let host = trimmed
                .strip_prefix("http://")
                .or_else(|| trimmed.strip_prefix("https://"));
            let valid = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', ' ', '*']));
            match HeaderValue::from_str(trimmed) {
                Ok(value) if valid => allowed.push(value),
                _ => self
                    .errors
                    .push(ServerError::InvalidOrigin(origin.to_owned())),
            }
        }
        self.cors = Some(
            tower_http::cors::CorsLayer::new()
                .allow_origin(allowed)
                .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                .expose_headers([
                    header::HeaderName::from_static(crate::stream::TIMESTAMP_HEADER),
                    header::HeaderName::from_static(crate::stream::FRAME_INDEX_HEADER),
                ]),
        );
        self
    }

    /// Full control of cross-origin access with tower-http's `CorsLayer`, instead of
    /// [`allow_origins`](Self::allow_origins). Never combine a wildcard origin with
    /// credentials (tower-http refuses that configuration).
    pub fn cors(mut self, cors: tower_http::cors::CorsLayer) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Checks names, binds properties, loads settings, and assembles routes, Thing
    /// Descriptions and the OpenAPI document.
    ///
    /// # Errors
    ///
    /// The first problem found: a bad or duplicate name, a bad prefix, a Thing added twice, or
    /// a schema the OpenAPI document cannot hold. Problems with settings files are not errors:
    /// they are logged and the file is kept aside (see [`Property`](crate::Property)).
    pub fn build(self) -> Result<ThingServer, ServerError> {
        if let Some(error) = self.errors.into_iter().next() {
            return Err(error);
        }
        let prefix = self.api_prefix.trim_end_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(ServerError::InvalidPrefix(self.api_prefix));
        }
        let base = Base {
            public_url: self.public_url,
            prefix: prefix.clone(),
        };
        let invocations = Invocations::new(self.retention, self.grace);
        let context = Context {
            settings_folder: self.settings_folder,
            invocations: invocations.clone(),
            base: base.clone(),
        };
        let mut parts = Vec::new();
        for pending in self.things {
            parts.push((pending.attach)(&context)?);
        }
        let mut docs: Vec<RouteDoc> = parts.iter().flat_map(|p| p.docs.clone()).collect();
        docs.extend(openapi::server_routes());
        docs.extend(actions::invocation_docs());
        let (ui_page, ui_router, ui_docs) = ui::routes(&self.ui, &self.folders);
        docs.extend(ui_docs);
        let document = openapi::document(&prefix, &docs).map_err(ServerError::OpenApi)?;

        let descriptions: Arc<Vec<(String, ThingDescription)>> = Arc::new(
            parts
                .iter()
                .map(|p| (p.name.clone(), p.description.clone()))
                .collect(),
        );
        let mut api = actions::invocation_routes(&invocations, &base)
            .merge(ui_router)
            .route(
                "/things/",
                get({
                    let (descriptions, base) = (descriptions.clone(), base.clone());
                    move |headers: HeaderMap| async move {
                        let root = base.url(&headers);
                        let index: Map<String, Value> = descriptions
                            .iter()
                            .map(|(name, _)| (name.clone(), Value::from(format!("{root}{name}/"))))
                            .collect();
                        axum::Json(index)
                    }
                }),
            )
            .route(
                "/thing_descriptions/",
                get({
                    let (descriptions, base) = (descriptions.clone(), base.clone());
                    move |headers: HeaderMap| async move {
                        let root = base.url(&headers);
                        let index: Map<String, Value> = descriptions
                            .iter()
                            .map(|(name, td)| {
                                let td = td.with_base(root.clone());
                                (
                                    name.clone(),
                                    serde_json::to_value(td).unwrap_or(Value::Null),
                                )
                            })
                            .collect();
                        axum::Json(index)
                    }
                }),
            );
        for part in &parts {
            let description = part.description.clone();
            let base = base.clone();
            api = api
                .route(
                    &format!("/{}/", part.name),
                    get(move |headers: HeaderMap| {
                        let td = description.with_base(base.url(&headers));
                        async move { td_response(&td) }
                    }),
                )
                .merge(part.router.clone());
        }
        let swagger = utoipa_swagger_ui::SwaggerUi::new(format!("{prefix}/docs"))
            .url(format!("{prefix}/openapi.json"), document.clone())
            .config(
                utoipa_swagger_ui::Config::new([format!("{prefix}/openapi.json")])
                    .validator_url("none"),
            );
        let api = match (prefix.is_empty(), ui_page) {
            (true, Some(page)) => api.route("/", page),
            (true, None) => api,
            // Nested, a root route would answer at `/api`, where the page's relative URLs
            // would point outside the prefix: serve it at `/api/` and redirect `/api` there.
            (false, page) => {
                let mut outer = Router::new().nest(&prefix, api);
                if let Some(page) = page {
                    let slash = format!("{prefix}/");
                    outer = outer.route(&slash, page).route(
                        &prefix,
                        get(move || async move { axum::response::Redirect::permanent(&slash) }),
                    );
                }
                outer
            }
        };
        let routes = api
            .merge(Router::from(swagger))
            .fallback(|request: Request| async move { not_found(request.uri().path()) });
        // Wrapping the whole router (not each route, as `Router::layer` does) lets the mapper
        // see the `Allow` header axum adds to its 405s.
        let mut router = Router::new().fallback_service(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::map_response(problems::as_problem))
                .service(routes),
        );
        if let Some(cors) = self.cors {
            router = router.layer(cors);
        }
        let things = parts
            .into_iter()
            .map(|part| Running {
                name: part.name,
                lifecycle: part.lifecycle,
                streams: part.streams,
                settings: part.settings,
            })
            .collect();
        Ok(ThingServer {
            router,
            things,
            openapi: document,
            routes: docs
                .into_iter()
                .map(|doc| (doc.method, format!("{prefix}{}", doc.path)))
                .collect(),
        })
    }
}

/// How to compute a TD's `base` for a request.
#[derive(Clone)]
pub(crate) struct Base {
    public_url: Option<String>,
    prefix: String,
}

impl Base {
    /// The URL that Thing paths are relative to, ending in `/`.
    pub(crate) fn url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("http://{host}{}/", self.prefix)
    }
}

fn td_response(td: &ThingDescription) -> Response {
    match serde_json::to_vec(td) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(TD_MEDIA_TYPE),
            )],
            body,
        )
            .into_response(),
        Err(error) => problems::internal("serialising a Thing Description", &error),
    }
}

/// A server of Things, built by [`ThingServer::builder`].
///
/// # Examples
///
/// ```no_run
/// use labthings::{Property, Thing, ThingServer};
///
/// /// A thermometer.
/// #[derive(Thing)]
/// struct Thermometer {
///     /// The temperature, in degrees Celsius.
///     #[property(read_only)]
///     temperature: Property<f64>,
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), labthings::ServerError> {
/// let thermometer = Thermometer { temperature: Property::new(21.5) };
/// ThingServer::builder()
///     .add_thing("thermometer", thermometer)
///     .build()?
///     .serve("127.0.0.1:5000".parse().unwrap())
///     .await
/// # }
/// ```
pub struct ThingServer {
    router: Router,
    things: Vec<Running>,
    openapi: utoipa::openapi::OpenApi,
    routes: Vec<(Method, String)>,
}

struct Running {
    name: String,
    lifecycle: Arc<dyn Lifecycle>,
    streams: Vec<MjpegStream>,
    settings: Option<Arc<SettingsFile>>,
}

impl std::fmt::Debug for ThingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThingServer")
            .field(
                "things",
                &self.things.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ThingServer {
    /// A builder with no Things, no prefix and no settings folder.
    pub fn builder() -> ThingServerBuilder {
        ThingServerBuilder {
            api_prefix: String::new(),
            settings_folder: None,
            public_url: None,
            cors: None,
            retention: std::time::Duration::from_secs(300),
            grace: std::time::Duration::from_secs(2),
            ui: ui::UiSource::Embedded,
            folders: Vec::new(),
            things: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The axum router with every route (useful to add your own routes, or in tests).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The OpenAPI document served at `/openapi.json`.
    pub fn openapi(&self) -> &utoipa::openapi::OpenApi {
        &self.openapi
    }

    /// Every documented route, as (method, path); `HEAD` is served wherever `GET` is.
    pub fn routes(&self) -> &[(Method, String)] {
        &self.routes
    }

    /// Binds `address` and serves until Ctrl-C or SIGTERM; see [`serve_with`](Self::serve_with).
    ///
    /// # Errors
    ///
    /// As [`serve_with`](Self::serve_with), and if the address cannot be bound.
    pub async fn serve(self, address: SocketAddr) -> Result<(), ServerError> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        tracing::info!("serving on http://{}", listener.local_addr()?);
        self.serve_with(listener, shutdown_signal()).await
    }

    /// Starts every Thing (in the order added), serves on `listener` until `shutdown`
    /// completes, then ends every stream, stops every Thing (in reverse order) and saves
    /// settings.
    ///
    /// # Errors
    ///
    /// [`ServerError::Start`] if a Thing's start hook fails (Things already started are
    /// stopped again, and nothing is served), or an I/O error from serving.
    pub async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        for (started, thing) in self.things.iter().enumerate() {
            if let Err(error) = thing.lifecycle.start().await {
                for earlier in self.things[..started].iter().rev() {
                    earlier.lifecycle.stop().await;
                }
                return Err(ServerError::Start {
                    thing: thing.name.clone(),
                    error,
                });
            }
        }
        let streams: Vec<MjpegStream> =
            self.things.iter().flat_map(|t| t.streams.clone()).collect();
        let result = crate::serve(listener, self.router.clone())
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: ending streams");
                for stream in &streams {
                    stream.stop();
                }
            })
            .await;
        for thing in self.things.iter().rev() {
            thing.lifecycle.stop().await;
            if let Some(settings) = &thing.settings {
                let _ = settings.save().await;
            }
        }
        Ok(result?)
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: the usual graceful-shutdown signal.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("use letters, digits, `_` and `-` only".to_owned());
    }
    if RESERVED_NAMES.contains(&name) {
        return Err("the server uses this name for its own routes".to_owned());
    }
    Ok(())
}

/// Binds a Thing's properties, loads its settings, and builds its routes and TD.
fn attach<T: Thing>(name: String, thing: Arc<T>, context: &Context) -> Result<Parts, ServerError> {
    let descriptor = T::descriptor();
    let mut names: Vec<&str> = descriptor.properties.iter().map(|p| p.name).collect();
    names.extend(descriptor.streams.iter().map(|s| s.name));
    names.extend(descriptor.actions.iter().map(|a| a.name));
    for (index, affordance) in names.iter().enumerate() {
        if names[..index].contains(affordance) {
            return Err(ServerError::DuplicateAffordance {
                thing: name,
                affordance: (*affordance).to_owned(),
            });
        }
    }
    let settings = settings_file(&name, &thing, &descriptor, context);
    for property in &descriptor.properties {
        let binding = Binding {
            name: property.name.to_owned(),
            constraints: property.constraints.clone(),
            persist: settings
                .as_ref()
                .filter(|_| property.setting)
                .map(|file| file.clone() as Arc<dyn Persist>),
        };
        if (property.access)(&thing).bind(binding).is_err() {
            return Err(ServerError::AlreadyAdded { thing: name });
        }
    }
    if let Some(file) = &settings {
        load_settings(&name, &thing, &descriptor, file);
    }
    let mut router = Router::new();
    let mut docs = Vec::new();
    for (index, property) in descriptor.properties.iter().enumerate() {
        let path = format!("/{name}/{}", property.name);
        router = router.route(&path, property_routes(&thing, &descriptor, index));
        docs.extend(property_docs(&name, property, &path));
    }
    for action in &descriptor.actions {
        let path = format!("/{name}/{}", action.name);
        router = router.route(
            &path,
            actions::action_routes(&name, &thing, action, &context.invocations, &context.base),
        );
        docs.extend(actions::action_docs(&name, action, &path));
    }
    let mut streams = Vec::new();
    for stream in &descriptor.streams {
        let handle = (stream.access)(&thing).clone();
        if let Some(size) = stream.ringbuffer {
            handle.set_ringbuffer_size(size);
        }
        let path = format!("/{name}/{}", stream.name);
        router = router.merge(stream::routes(&path, handle.clone()));
        docs.extend(stream_docs(&name, stream.name, stream.description, &path));
        streams.push(handle);
    }
    let observable = Arc::new(ws::Observable {
        thing: name.clone(),
        properties: descriptor
            .properties
            .iter()
            .map(|p| {
                (
                    p.name.to_owned(),
                    p.observable,
                    ws::subscriber(thing.clone(), p.access),
                )
            })
            .collect(),
        actions: descriptor
            .actions
            .iter()
            .map(|a| a.name.to_owned())
            .collect(),
        invocations: context.invocations.clone(),
        base: context.base.clone(),
    });
    router = router.route(
        &format!("/{name}/ws"),
        get(
            move |upgrade: axum::extract::ws::WebSocketUpgrade, headers: HeaderMap| {
                ws::upgrade(observable.clone(), upgrade, headers)
            },
        ),
    );
    docs.push(RouteDoc::get(
        format!("/{name}/ws"),
        json!({
            "operationId": format!("{name}_websocket"),
            "summary": format!("Observe the properties and actions of {name} (WebSocket)"),
            "description": "Send `{\"messageType\": \"addPropertyObservation\", \"data\": {\"<property>\": true}}` or `addActionObservation`; receive `propertyStatus` and `actionStatus` messages.",
            "tags": [name],
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol"},
                "400": openapi::problem("Not a valid WebSocket handshake"),
                "426": openapi::problem("Not a WebSocket upgrade request"),
            },
        }),
    ));
    docs.push(RouteDoc::get(
        format!("/{name}/"),
        json!({
            "operationId": format!("{name}_thing_description"),
            "summary": format!("The Thing Description of {name}"),
            "tags": [name],
            "responses": {"200": {"description": "W3C WoT Thing Description 1.1",
                "content": {TD_MEDIA_TYPE: {"schema": {"type": "object"}}}}},
        }),
    ));
    let description = ThingDescription::build(&name, &descriptor);
    Ok(Parts {
        name,
        router,
        docs,
        description,
        lifecycle: thing,
        streams,
        settings,
    })
}

fn settings_file<T: Thing>(
    name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    context: &Context,
) -> Option<Arc<SettingsFile>> {
    let folder = context.settings_folder.as_ref()?;
    if !descriptor.properties.iter().any(|p| p.setting) {
        return None;
    }
    let weak: Weak<T> = Arc::downgrade(thing);
    let accessors: Vec<_> = descriptor
        .properties
        .iter()
        .filter(|p| p.setting)
        .map(|p| (p.name, p.access))
        .collect();
    let snapshot = Box::new(move || {
        let Some(thing) = weak.upgrade() else {
            return Map::new();
        };
        accessors
            .iter()
            .filter_map(|(name, access)| {
                Some(((*name).to_owned(), access(&thing).read_json().ok()?))
            })
            .collect()
    });
    Some(SettingsFile::new(
        folder.join(name).join("settings.json"),
        snapshot,
    ))
}

fn load_settings<T: Thing>(
    name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    file: &SettingsFile,
) {
    let mut values = match SettingsFile::load(file.path()) {
        Ok(Some(loaded)) => loaded.values,
        Ok(None) => return,
        Err(corrupt) => {
            tracing::error!(thing = name, "{corrupt}");
            return;
        }
    };
    let mut rejected = Vec::new();
    for property in descriptor.properties.iter().filter(|p| p.setting) {
        if let Some(value) = values.remove(property.name) {
            if let Err(error) = (property.access)(thing).load_json(value) {
                rejected.push(format!("{}: {error}", property.name));
            }
        }
    }
    file.keep_unknown(values);
    if !rejected.is_empty() {
        let aside = SettingsFile::copy_aside(file.path())
            .map(|path| path.display().to_string())
            .unwrap_or_else(|error| format!("(could not copy it aside: {error})"));
        tracing::error!(
            thing = name,
            file = %file.path().display(),
            kept_at = %aside,
            "settings kept their defaults because the saved values do not fit: {}",
            rejected.join("; ")
        );
    }
}

/// `GET` (and `PUT` unless read-only) for one property.
fn property_routes<T: Thing>(
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    index: usize,
) -> MethodRouter {
    let property = &descriptor.properties[index];
    let (name, access, read_only) = (property.name, property.access, property.read_only);
    let reader = thing.clone();
    let routes = get(move || {
        let thing = reader.clone();
        async move {
            match access(&thing).read_json() {
                Ok(value) => axum::Json(value).into_response(),
                Err(error) => problems::internal(&format!("reading property {name}"), &error),
            }
        }
    });
    if read_only {
        return routes.fallback(move |method: Method| async move {
            let detail = if method == Method::PUT {
                format!("Property `{name}` is read-only.")
            } else {
                format!("Method {method} is not allowed on property `{name}`; it can only be read.")
            };
            Problem::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_detail(detail)
                .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD"))
                .into_response()
        });
    }
    let writer = thing.clone();
    routes.put(move |headers: HeaderMap, body: Bytes| {
        let thing = writer.clone();
        async move {
            let value = match problems::json_body(&headers, &body) {
                Ok(value) => value,
                Err(problem) => return problem.into_response(),
            };
            match access(&thing).write_json(value).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(error) => property_problem(name, &error),
            }
        }
    })
}

fn property_problem(name: &str, error: &PropertyError) -> Response {
    let status = error.status();
    if status.is_server_error() && !matches!(error, PropertyError::Rejected(_)) {
        return problems::internal(&format!("writing property {name}"), error);
    }
    let mut problem = Problem::new(status).with_detail(error.to_string());
    match error {
        PropertyError::Invalid { detail, .. } => {
            problem = problem.with_invalid_param(name, detail.clone());
        }
        PropertyError::Constraint { violation, .. } => {
            problem = problem.with_invalid_param(
                name,
                format!("{} ({})", violation.detail, violation.keyword),
            );
        }
        _ => {}
    }
    problem.into_response()
}

fn property_docs<T>(
    thing: &str,
    property: &crate::thing::PropertyDescriptor<T>,
    path: &str,
) -> Vec<RouteDoc> {
    let schema = openapi::value_schema((property.schema)(), &property.constraints);
    let summary = property.title.unwrap_or(property.name);
    let description = property.description.unwrap_or_default();
    let mut docs = vec![RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_read_{}", property.name),
            "summary": format!("Read {}: {summary}", property.name),
            "description": description,
            "tags": [thing],
            "responses": {
                "200": openapi::json_response("The current value", schema.clone()),
                "500": openapi::problem("The value could not be read"),
            },
        }),
    )];
    if !property.read_only {
        docs.push(RouteDoc::put(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_write_{}", property.name),
                "summary": format!("Write {}: {summary}", property.name),
                "description": description,
                "tags": [thing],
                "requestBody": {"required": true, "content": {"application/json": {"schema": schema}}},
                "responses": {
                    "204": {"description": "The value was accepted"},
                    "400": openapi::problem("The body is not JSON"),
                    "413": openapi::problem("The body is too large"),
                    "415": openapi::problem("The body is not sent as JSON"),
                    "422": openapi::problem("The value is of the wrong type or breaks a constraint; `invalid-params` names the property"),
                    "500": openapi::problem("The value was applied but could not be saved"),
                    "503": openapi::problem("The instrument cannot take the value now"),
                },
            }),
        ));
    }
    docs
}

fn stream_docs(thing: &str, name: &str, description: Option<&str>, path: &str) -> Vec<RouteDoc> {
    vec![
        RouteDoc::get(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_{name}"),
                "summary": format!("Live MJPEG stream {name}"),
                "description": description.unwrap_or("A live stream of JPEG frames."),
                "tags": [thing],
                "parameters": [{"name": "fps", "in": "query", "required": false,
                    "description": "The highest frame rate this viewer wants",
                    "schema": {"type": "number", "exclusiveMinimum": 0}}],
                "responses": {
                    "200": {"description": "multipart/x-mixed-replace, one JPEG per part",
                        "content": {crate::stream::STREAM_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                    "400": openapi::problem("An invalid or unknown query parameter"),
                },
            }),
        ),
        RouteDoc::get(
            format!("{path}/snapshot"),
            json!({
                "operationId": format!("{thing}_{name}_snapshot"),
                "summary": format!("The newest frame of {name}"),
                "tags": [thing],
                "responses": {
                    "200": {"description": "A JPEG, with X-Timestamp and X-Frame-Index headers",
                        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                    "503": openapi::problem("No frame yet"),
                },
            }),
        ),
        RouteDoc::get(
            format!("{path}/viewer"),
            json!({
                "operationId": format!("{thing}_{name}_viewer"),
                "summary": format!("A web page showing {name}"),
                "tags": [thing],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }),
        ),
    ]
}
