//! [`ThingServerBuilder`]: names, settings folder, prefix, UI and CORS; `build()` assembles
//! the routes, Thing Descriptions and the OpenAPI document.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::routing::{MethodRouter, get};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::auth::{self, Auth, Guard};
use super::metrics::{self, Metrics};
use super::problems::{self, not_found};
use super::things::{Base, Running, ThingServer, attach, td_response};
use super::{actions, ui};
use crate::action::Invocations;
use crate::openapi::{self, RouteDoc};
use crate::property::settings::SettingsFile;
use crate::stream::MjpegStream;
use crate::td::ThingDescription;
use crate::thing::{BoxError, Thing};

/// Names a Thing cannot have: the server's own routes.
const RESERVED_NAMES: &[&str] = &[
    "things",
    "thing_descriptions",
    "openapi.json",
    "docs",
    "action_invocations",
    "blob",
    "metrics",
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
    /// The access control configuration is unusable.
    #[error("invalid access control configuration: {0}")]
    InvalidAuth(String),
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
    auth: Option<Auth>,
    connection: crate::ConnectionOptions,
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

pub(crate) type Attach = Box<dyn FnOnce(&Context) -> Result<Parts, ServerError> + Send>;

pub(crate) struct Pending {
    name: String,
    attach: Attach,
}

/// What a Thing's routes need to know about the server.
pub(crate) struct Context {
    pub(crate) settings_folder: Option<PathBuf>,
    pub(crate) invocations: Arc<Invocations>,
    pub(crate) base: Base,
    pub(crate) metrics: Arc<Metrics>,
    /// `Some(reads are public)` when access control is on.
    pub(crate) security: Option<bool>,
    /// Cancelled when the server shuts down (websockets close with it).
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

/// One Thing, assembled.
pub(crate) struct Parts {
    pub(crate) name: String,
    pub(crate) router: Router,
    pub(crate) docs: Vec<RouteDoc>,
    pub(crate) description: ThingDescription,
    pub(crate) lifecycle: Arc<dyn Lifecycle>,
    pub(crate) streams: Vec<MjpegStream>,
    pub(crate) settings: Option<Arc<SettingsFile>>,
}

pub(crate) trait Lifecycle: Send + Sync {
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
    /// A builder with no Things, no prefix and no settings folder.
    pub(crate) fn new() -> Self {
        Self {
            api_prefix: String::new(),
            settings_folder: None,
            public_url: None,
            cors: None,
            auth: None,
            connection: crate::ConnectionOptions::default(),
            retention: std::time::Duration::from_secs(300),
            grace: std::time::Duration::from_secs(2),
            ui: ui::UiSource::Embedded,
            folders: Vec::new(),
            things: Vec::new(),
            errors: Vec::new(),
        }
    }

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

    /// Limits and timeouts for each connection (buffer sizes, header timeout, the most
    /// connections at once, the shutdown deadline); see [`ConnectionOptions`](crate::ConnectionOptions).
    pub fn connection_options(mut self, options: crate::ConnectionOptions) -> Self {
        self.connection = options;
        self
    }

    /// Turns on access control with bearer tokens; see [`Auth`]. Off by default.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
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
        if let Some(auth) = &self.auth {
            auth.validate().map_err(ServerError::InvalidAuth)?;
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
        let metrics = Metrics::new(invocations.clone());
        let context = Context {
            settings_folder: self.settings_folder,
            invocations: invocations.clone(),
            base: base.clone(),
            metrics: metrics.clone(),
            security: self.auth.as_ref().map(Auth::reads_are_public),
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let mut parts = Vec::new();
        for pending in self.things {
            parts.push((pending.attach)(&context)?);
        }
        let mut docs: Vec<RouteDoc> = parts.iter().flat_map(|p| p.docs.clone()).collect();
        docs.extend(openapi::server_routes());
        docs.extend(actions::invocation_docs());
        docs.push(metrics::doc());
        let (ui_page, ui_router, ui_docs) = ui::routes(&self.ui, &self.folders);
        docs.extend(ui_docs);
        if let Some(auth) = &self.auth {
            openapi::document_access(&mut docs, auth.reads_are_public());
        }
        let mut document = openapi::document(&prefix, &docs).map_err(ServerError::OpenApi)?;
        if self.auth.is_some() {
            openapi::add_bearer_security(&mut document);
        }

        let descriptions: Arc<Vec<(String, ThingDescription)>> = Arc::new(
            parts
                .iter()
                .map(|p| (p.name.clone(), p.description.clone()))
                .collect(),
        );
        let mut api = actions::invocation_routes(&invocations, &base)
            .merge(ui_router)
            .route(
                "/metrics",
                get(metrics::metrics).with_state(metrics.clone()),
            )
            .route(
                "/things/",
                index_route(&descriptions, &base, |root, name, _| {
                    Value::from(format!("{root}{name}/"))
                }),
            )
            .route(
                "/thing_descriptions/",
                index_route(&descriptions, &base, |root, _, td| {
                    serde_json::to_value(td.with_base(root.to_owned())).unwrap_or(Value::Null)
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
        let mut router = Router::new()
            .fallback_service(
                tower::ServiceBuilder::new()
                    .layer(axum::middleware::map_response(problems::as_problem))
                    .service(routes),
            )
            .layer(axum::middleware::from_fn(problems::limit_body))
            .layer(axum::extract::DefaultBodyLimit::max(problems::MAX_BODY))
            // A bug in a handler is a 500 problem for that request, not a dropped connection.
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                problems::panicked,
            ));
        if let Some(auth) = self.auth {
            let guard = Arc::new(Guard {
                auth,
                prefix: prefix.clone(),
            });
            router = router.layer(axum::middleware::from_fn_with_state(guard, auth::check));
        }
        // Outside access control, so that CORS preflights need no token.
        if let Some(cors) = self.cors {
            router = router.layer(cors);
        }
        router = router.layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::observe,
        ));
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
            shutdown: context.shutdown.clone(),
            invocations,
            metrics: context.metrics.clone(),
            options: self.connection,
            things,
            openapi: document,
            routes: docs
                .into_iter()
                .map(|doc| (doc.method, format!("{prefix}{}", doc.path)))
                .collect(),
        })
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

/// A route answering a JSON object with one member per Thing (name to `value`), for the
/// `/things/` and `/thing_descriptions/` indexes; `value` gets the request's base URL.
fn index_route(
    descriptions: &Arc<Vec<(String, ThingDescription)>>,
    base: &Base,
    value: fn(&str, &str, &ThingDescription) -> Value,
) -> MethodRouter {
    let (descriptions, base) = (descriptions.clone(), base.clone());
    get(move |headers: HeaderMap| async move {
        let root = base.url(&headers);
        let index: Map<String, Value> = descriptions
            .iter()
            .map(|(name, td)| (name.clone(), value(&root, name, td)))
            .collect();
        axum::Json(index)
    })
}
