//! [`ThingServer`]: Things, their routes, Thing Descriptions, OpenAPI document and lifecycle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::builder::{Context, Lifecycle, Parts, ServerError, ThingServerBuilder};
use super::problems::{self};
use super::{actions, affordances, settings, ws};
use crate::openapi::{self, RouteDoc};
use crate::property::settings::SettingsFile;
use crate::property::{Binding, Persist};
use crate::stream::{self, MjpegStream};
use crate::td::{TD_MEDIA_TYPE, ThingDescription};
use crate::thing::Thing;

/// How to compute a TD's `base` for a request.
#[derive(Clone)]
pub(crate) struct Base {
    pub(crate) public_url: Option<String>,
    pub(crate) prefix: String,
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

pub(crate) fn td_response(td: &ThingDescription) -> Response {
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
    pub(crate) router: Router,
    /// Cancelled on shutdown: websockets close with it.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    pub(crate) invocations: Arc<crate::action::Invocations>,
    pub(crate) metrics: Arc<super::metrics::Metrics>,
    pub(crate) options: crate::ConnectionOptions,
    pub(crate) things: Vec<Running>,
    pub(crate) openapi: utoipa::openapi::OpenApi,
    pub(crate) routes: Vec<(Method, String)>,
}

pub(crate) struct Running {
    pub(crate) name: String,
    pub(crate) lifecycle: Arc<dyn Lifecycle>,
    pub(crate) streams: Vec<MjpegStream>,
    pub(crate) settings: Option<Arc<SettingsFile>>,
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
        ThingServerBuilder::new()
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
        let (closing, invocations) = (self.shutdown.clone(), self.invocations.clone());
        let result = crate::serve(listener, self.router.clone())
            .with_options(self.options.clone())
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: ending streams, websockets and actions");
                for stream in &streams {
                    stream.stop();
                }
                closing.cancel();
                // At once, so that requests waiting on actions (`?wait=`) end while
                // connections are drained.
                invocations.close();
            })
            .await;
        self.invocations.drained().await;
        // Websockets were handed off by the HTTP connections: give them time to close.
        if !self.metrics.websockets_closed(Duration::from_secs(2)).await {
            tracing::warn!("shutting down: websockets still open are dropped");
        }
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

/// Binds a Thing's properties, loads its settings, and builds its routes and TD.
pub(crate) fn attach<T: Thing>(
    name: String,
    thing: Arc<T>,
    context: &Context,
) -> Result<Parts, ServerError> {
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
    let settings = settings::settings_file(
        &name,
        &thing,
        &descriptor,
        context.settings_folder.as_deref(),
    );
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
        settings::load_settings(&name, &thing, &descriptor, file);
    }
    let mut router = Router::new();
    let mut docs = Vec::new();
    for (index, property) in descriptor.properties.iter().enumerate() {
        let path = format!("/{name}/{}", property.name);
        router = router.route(
            &path,
            affordances::property_routes(&thing, &descriptor, index),
        );
        docs.extend(affordances::property_docs(&name, property, &path));
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
        docs.extend(affordances::stream_docs(
            &name,
            stream.name,
            stream.description,
            &path,
        ));
        context
            .metrics
            .add_stream(&name, stream.name, handle.clone());
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
        metrics: context.metrics.clone(),
        shutdown: context.shutdown.clone(),
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
    let mut description = ThingDescription::build(&name, &descriptor);
    if let Some(public_read) = context.security {
        description.use_bearer_security(public_read);
    }
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
