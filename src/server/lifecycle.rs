//! [`ThingServer`]: a built server of Things, and its life: start the Things, serve, shut
//! down gracefully, stop the Things and save their settings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures_util::future::BoxFuture;

use super::error::ServerError;
use super::metrics::Metrics;
use crate::property::binding::Persist;
use crate::property::settings::SettingsFile;
use crate::serve::{ConnectionOptions, serve};
use crate::stream::MjpegStream;
use crate::thing::{BoxError, Thing};

/// How long a clean shutdown waits for the directory entries to be removed.
#[cfg(feature = "directory")]
const UNREGISTER_WITHIN: Duration = Duration::from_secs(8);

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
/// # #[tokio::main] async fn main() -> Result<(), labthings::server::ServerError> {
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
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: ConnectionOptions,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::serve::TlsCertificate>,
    /// What to announce over mDNS, when discovery is on.
    #[cfg(feature = "mdns")]
    pub(crate) discovery: Option<Discovery>,
    pub(crate) things: Vec<Running>,
    /// The ids, and the lock on the settings folder, held while the server lives.
    pub(crate) _identity: super::identity::Identity,
    /// Registration with a Thing Description Directory, when one is configured.
    #[cfg(feature = "directory")]
    pub(crate) directory: Option<super::directory::Registrar>,
    pub(crate) openapi: utoipa::openapi::OpenApi,
    /// Every path given to the router, with the API prefix (for the test that compares it
    /// with the OpenAPI document).
    #[cfg(test)]
    pub(crate) served_paths: Vec<String>,
}

/// What a server announces over mDNS.
#[cfg(feature = "mdns")]
#[derive(Debug, Clone)]
pub(crate) struct Discovery {
    pub(crate) title: String,
    /// The path of `/.well-known/wot`, with the API prefix.
    pub(crate) td_path: String,
}

/// One Thing of a built server: what starting, stopping and shutting down need.
pub(crate) struct Running {
    pub(crate) name: String,
    pub(crate) lifecycle: Arc<dyn Lifecycle>,
    pub(crate) streams: Vec<MjpegStream>,
    pub(crate) settings: Option<Arc<SettingsFile>>,
}

/// A Thing's start and stop hooks, without its type.
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
    /// The axum router with every route (useful to add your own routes, or in tests).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The OpenAPI 3.1 document served at `/openapi.json`, as JSON: every route the server
    /// serves is in its `paths`.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = labthings::ThingServer::builder().without_settings_folder().build().unwrap();
    /// let document = server.openapi();
    /// assert_eq!(document["openapi"], "3.1.0");
    /// assert!(document["paths"]["/things/"].is_object());
    /// ```
    pub fn openapi(&self) -> serde_json::Value {
        serde_json::to_value(&self.openapi).expect("an OpenAPI document is JSON")
    }

    /// Every path the router was given a route for, as a route template
    /// (`/action_invocations/{id}`), with the API prefix: what is served, recorded as routes
    /// are added and independently of the documentation, so the two can be compared.
    #[cfg(test)]
    pub(crate) fn served_paths(&self) -> &[String] {
        &self.served_paths
    }

    /// Starts the mDNS announcement, if discovery is on; a failure is logged, not fatal (the
    /// server is still reachable by its address).
    #[cfg(feature = "mdns")]
    fn announce(&self, listener: &tokio::net::TcpListener) -> Option<tokio::task::JoinHandle<()>> {
        let discovery = self.discovery.as_ref()?;
        let local = listener.local_addr().ok()?;
        let host = super::discovery::host_name().unwrap_or_else(|| "labthings".to_owned());
        let host = host.split('.').next().unwrap_or("labthings").to_owned();
        let advertisement = super::mdns::Advertisement {
            instance: super::mdns::instance_label(&discovery.title, &host, local.port()),
            host,
            port: local.port(),
            txt: vec![
                format!("td={}", discovery.td_path),
                "type=Thing".to_owned(),
                format!("scheme={}", self.scheme()),
            ],
        };
        let interfaces = super::mdns::interfaces_for(local.ip());
        match super::mdns::spawn(advertisement, interfaces, self.shutdown.clone()) {
            Ok(task) => Some(task),
            Err(error) => {
                tracing::warn!(%error, "discovery: cannot announce over mDNS");
                None
            }
        }
    }

    /// `https` when the server has a certificate, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// The SHA-256 fingerprint of the server's certificate (`AB:CD:...`), when it serves
    /// HTTPS: what a user compares before trusting a self-signed certificate.
    #[cfg(feature = "tls")]
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.tls
            .as_ref()
            .map(crate::serve::TlsCertificate::fingerprint)
    }

    /// Binds `address` and serves until Ctrl-C or SIGTERM; see [`serve_with`](Self::serve_with).
    ///
    /// # Errors
    ///
    /// As [`serve_with`](Self::serve_with), and if the address cannot be bound.
    pub async fn serve(self, address: SocketAddr) -> Result<(), ServerError> {
        super::terminal_log::init();
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| ServerError::Bind { address, error })?;
        let local = listener.local_addr()?;
        tracing::info!("serving on {}://{local}", self.scheme());
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tracing::info!(
                "TLS certificate ({}), SHA-256 fingerprint {}",
                tls.source(),
                tls.fingerprint()
            );
        }
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
        super::terminal_log::init();
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
        #[cfg(feature = "mdns")]
        let announcing = self.announce(&listener);
        #[cfg(feature = "directory")]
        let registering = self
            .directory
            .as_ref()
            .map(|registrar| registrar.spawn(&listener, self.scheme(), self.shutdown.clone()));
        let streams: Vec<MjpegStream> =
            self.things.iter().flat_map(|t| t.streams.clone()).collect();
        let (closing, invocations) = (self.shutdown.clone(), self.invocations.clone());
        let serving = serve(listener, self.router.clone()).with_options(self.options.clone());
        #[cfg(feature = "tls")]
        let serving = match &self.tls {
            Some(tls) => serving.with_tls(tls.clone()),
            None => serving,
        };
        let result = serving
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
        #[cfg(feature = "mdns")]
        if let Some(announcing) = announcing {
            // Its goodbye (the shutdown token is cancelled by now).
            let _ = tokio::time::timeout(Duration::from_secs(1), announcing).await;
        }
        #[cfg(feature = "directory")]
        if let Some(registering) = registering {
            // Its entries are removed from the directory (bounded: a directory that does not
            // answer does not hold up the shutdown). A round of registration in progress is
            // finished first, and a loaded directory takes seconds per TD (domus-tdd-api turns
            // each into RDF): 8 s, well within systemd's 90 s stop timeout.
            let _ = tokio::time::timeout(UNREGISTER_WITHIN, registering).await;
        }
        // Websockets were handed off by the HTTP connections: give them time to close.
        if !self.metrics.websockets_closed(Duration::from_secs(2)).await {
            tracing::warn!("shutting down: websockets still open are dropped");
        }
        let mut not_saved = Vec::new();
        for thing in self.things.iter().rev() {
            thing.lifecycle.stop().await;
            if let Some(settings) = &thing.settings
                && let Err(error) = settings.save().await
            {
                not_saved.push(error);
            }
        }
        result?;
        if not_saved.is_empty() {
            Ok(())
        } else {
            Err(ServerError::SettingsNotSaved(not_saved))
        }
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
