//! [`ThingServerBuilder`]: names, settings and data folders, prefix, UI, CORS, access control,
//! HTTPS, proxies and discovery; [`build`](ThingServerBuilder::build) assembles every Thing and
//! the server's own routes into a [`ThingServer`].
//!
//! Longer than most files here for one reason: each of the builder's many options is a public
//! method with its documentation. What `build` does is delegated, step by step, to the modules
//! named in it (`assemble`, the affordance modules, `index`, `invocations`, `https`, ...).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::{MethodRouter, get};

use super::affordance::Context;
use super::assemble::{self, Assemble, Assembled};
use super::auth::{self, Auth, Guard};
use super::base::Base;
use super::error::ServerError;
use super::forwarded::{self, Proxies};
use super::hosts::{self, Hosts};
use super::index::{self, Descriptions};
use super::lifecycle::{Running, ThingServer};
use super::metrics::{self, Metrics};
use super::options::TlsOptions;
use super::options::{ServerOptions, Ui};
use super::problems::{self, not_found};
use super::route_table::RouteTable;
use super::sse::SseScope;
use super::{api_docs, invocations, ui};
use crate::action::Invocations;
use crate::layout;
use crate::openapi;
use crate::serve::ConnectionOptions;
use crate::thing::Thing;

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
    options: ServerOptions,
    #[cfg(feature = "tls")]
    tls_certificate: Option<crate::serve::TlsCertificate>,
    things: Vec<Pending>,
    errors: Vec<ServerError>,
}

impl std::fmt::Debug for ThingServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThingServerBuilder")
            .field("options", &self.options)
            .field(
                "things",
                &self.things.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

/// A Thing added to the builder, assembled by `build`.
struct Pending {
    name: String,
    assemble: Assemble,
}

impl ThingServer {
    /// A builder with no Things, no prefix and no settings folder.
    pub fn builder() -> ThingServerBuilder {
        ThingServerBuilder::new()
    }
}

impl ThingServerBuilder {
    /// A builder with no Things and the default options.
    pub(crate) fn new() -> Self {
        Self {
            options: ServerOptions::default(),
            #[cfg(feature = "tls")]
            tls_certificate: None,
            things: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Sets every option at once, as a configuration file does; the methods below set one
    /// each, under the same names.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
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
        let assemble = assemble::later(name.clone(), thing.into_shared());
        self.things.push(Pending { name, assemble });
        self
    }

    /// Serves everything under this prefix (`/api/v3`); default none.
    pub fn api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.api_prefix = prefix.into();
        self
    }

    /// Where settings are kept: `<folder>/<thing>/settings.json`. By default
    /// [`DEFAULT_SETTINGS_FOLDER`](super::DEFAULT_SETTINGS_FOLDER) (`./settings`, relative to the working directory, as in
    /// labthings-fastapi); the server logs where at start. The folder is created when a Thing
    /// has settings, and must be writable.
    pub fn settings_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.options.settings_folder = Some(folder.into());
        self
    }

    /// Keeps no settings (`"settings_folder": null`): `#[setting]`s behave as plain
    /// properties, lost at restart (for tests, and for servers whose settings live elsewhere).
    /// The server logs a warning when a Thing has settings.
    pub fn without_settings_folder(mut self) -> Self {
        self.options.settings_folder = None;
        self
    }

    /// Names the application in `/openapi.json` (`info.title`), which code generators use
    /// for the client they make: "OpenFlexure microscope", say. Default `labthings`.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.options.title = Some(title.into());
        self
    }

    /// The application's version in `/openapi.json` (`info.version`): the version of its API
    /// that clients are made for. Default: the labthings crate's version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.options.version = Some(version.into());
        self
    }

    /// What the application is, for `/openapi.json` (`info.description`, Markdown) and the
    /// API browser's first lines. By default a description of a labthings server.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.options.description = Some(description.into());
        self
    }

    /// Where actions keep data too big for a response (recordings go to
    /// `<folder>/recordings/`); see [`ActionContext::data_folder`](crate::ActionContext::data_folder).
    /// By default [`DEFAULT_DATA_FOLDER`](super::DEFAULT_DATA_FOLDER) (`./data`), created when first written to.
    pub fn data_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.options.data_folder = Some(folder.into());
        self
    }

    /// No data folder (`"data_folder": null`): actions that write files (recordings) end in a
    /// clear error.
    pub fn without_data_folder(mut self) -> Self {
        self.options.data_folder = None;
        self
    }

    /// The URL clients reach the server at (`https://lab.example/microscope/`), used as the
    /// `base` of Thing Descriptions. By default `base` is built from each request's `Host`.
    /// Its host is one of the server's names (see [`allow_hosts`](Self::allow_hosts)), and its
    /// pages are the server's own (they may write and open websockets).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.options.public_url = Some(url.into());
        self
    }

    /// Serves HTTPS with a certificate and key from PEM files, or (with
    /// [`TlsOptions::self_signed`]) a self-signed certificate made on first start and kept in
    /// `<settings folder>/tls/`, so that it stays the same across restarts. Clients that offer
    /// HTTP/2 get it. Needs the `tls` feature: without it, [`build`](Self::build) says so.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.options.tls = Some(tls);
        self
    }

    /// Serves HTTPS with this certificate, already loaded (from memory, say), over any
    /// [`tls`](Self::tls) option; see [`TlsCertificate`](crate::serve::TlsCertificate). Not a
    /// configuration-file key: files name PEM files with `tls`.
    #[cfg(feature = "tls")]
    pub fn tls_certificate(mut self, certificate: crate::serve::TlsCertificate) -> Self {
        self.tls_certificate = Some(certificate);
        self
    }

    /// Announces the server over mDNS (DNS-SD) as a `_wot._tcp` service, as W3C WoT Discovery
    /// describes, with a `td` TXT record pointing at `/.well-known/wot`. Only on the
    /// interfaces the server listens on: bound to `127.0.0.1`, on the loopback interface alone.
    /// Off by default. Needs the `mdns` feature: without it, [`build`](Self::build) says so.
    pub fn discovery(mut self, on: bool) -> Self {
        self.options.discovery = on;
        self
    }

    /// The `id` of the server's own Thing Description (`/.well-known/wot`), a URI. Default:
    /// a `urn:uuid:` made once and kept in the settings folder.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.options.id = Some(id.into());
        self
    }

    /// Keeps a history of `property` of the Thing named `thing` (served at
    /// `/{thing}/{property}/history`), overriding its `history` attribute.
    pub fn history(
        mut self,
        thing: impl Into<String>,
        property: impl Into<String>,
        options: crate::property::HistoryOptions,
    ) -> Self {
        self.options
            .history
            .entry(thing.into())
            .or_default()
            .insert(property.into(), options);
        self
    }

    /// The `id` of Things' TDs by Thing name (URIs), instead of the `urn:uuid:`s made once
    /// and kept in the settings folder.
    pub fn thing_ids<I, N, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = (N, S)>,
        N: Into<String>,
        S: Into<String>,
    {
        self.options.thing_ids = ids
            .into_iter()
            .map(|(name, id)| (name.into(), id.into()))
            .collect();
        self
    }

    /// Registers every Thing with a W3C WoT Thing Description Directory while the server
    /// runs (see [`DirectoryOptions`](super::DirectoryOptions)). Needs the `directory`
    /// feature: without it, [`build`](Self::build) says so.
    pub fn directory(mut self, directory: super::DirectoryOptions) -> Self {
        self.options.directory = Some(directory);
        self
    }

    /// Other servers the lab view (`/lab_view/`) shows, beside this one's Things and its
    /// directory's.
    pub fn lab(mut self, lab: super::LabOptions) -> Self {
        self.options.lab = lab;
        self
    }

    /// Reverse proxies in front of the server, by IP address or network (`"127.0.0.1"`,
    /// `"10.0.0.0/8"`, `"::1"`). A request from one of them may say, with
    /// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Prefix` (or the standard
    /// `Forwarded` header's `proto` and `host`), how the client reached the proxy, and every
    /// URL the server writes (Thing Description `base` and forms, invocation links, blob
    /// links, `Location`) follows: right under a sub-path on HTTPS. The same headers from
    /// anyone else are ignored. Connections from a trusted proxy are not held to
    /// [`ConnectionOptions::max_connections_per_client`]: every client behind it shares its
    /// address. A bad entry is reported by [`build`](Self::build).
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options
            .trusted_proxies
            .extend(proxies.into_iter().map(Into::into));
        self
    }

    /// The web UI: the built-in one (default), your own folder, or none; see [`Ui`].
    pub fn ui(mut self, ui: Ui) -> Self {
        self.options.ui = ui;
        self
    }

    /// Serves the files of folders beside the UI and the API, by URL path:
    /// `[("/data", "./data")]`. A path that is not `/name` is reported by
    /// [`build`](Self::build).
    pub fn serve_folders<I, P, F>(mut self, folders: I) -> Self
    where
        I: IntoIterator<Item = (P, F)>,
        P: Into<String>,
        F: Into<PathBuf>,
    {
        self.options.serve_folders.extend(
            folders
                .into_iter()
                .map(|(path, folder)| (path.into(), folder.into())),
        );
        self
    }

    /// How long finished invocations (and their outputs and blobs) are kept; default 5 min.
    pub fn invocation_retention(mut self, retention: Duration) -> Self {
        self.options.invocation_retention = retention;
        self
    }

    /// The most bytes finished invocations' outputs may take in memory together; the oldest
    /// are dropped past it (their output links then answer `410`). Default 64 MiB.
    pub fn invocation_output_budget(mut self, bytes: usize) -> Self {
        self.options.invocation_output_budget = bytes;
        self
    }

    /// The most recordings running at once on the server (at least 1; default 4); the next
    /// is answered `503` with `Retry-After`.
    pub fn max_recordings(mut self, max: usize) -> Self {
        self.options.max_recordings = max;
        self
    }

    /// The most recordings of one stream running at once (at least 1; default 2).
    pub fn max_recordings_per_stream(mut self, max: usize) -> Self {
        self.options.max_recordings_per_stream = max;
        self
    }

    /// How many events each Thing keeps, and how many property changes, for subscribers that
    /// reconnect with `Last-Event-ID` (Server-Sent Events); default 256 of each, at least 1. A
    /// subscriber that missed more is told how many it lost.
    pub fn event_history(mut self, events: usize) -> Self {
        self.options.event_history = events;
        self
    }

    /// How often a quiet Server-Sent Events stream sends a comment line, so that proxies and
    /// load balancers do not close it for idleness; default 15 s, at least 10 ms.
    pub fn sse_heartbeat(mut self, interval: Duration) -> Self {
        self.options.sse_heartbeat = interval;
        self
    }

    /// How long a cancelled action may take to stop by itself before its future is dropped
    /// (which stops an async action at the `.await` it is waiting at); default 2 s.
    pub fn cancellation_grace(mut self, grace: Duration) -> Self {
        self.options.cancellation_grace = grace;
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
        self.options
            .allow_origins
            .extend(origins.into_iter().map(|origin| origin.as_ref().to_owned()));
        self
    }

    /// Host names this server may be reached under when it is bound to a loopback address
    /// (`"microscope.lab"`; `"*"` for any), besides `localhost`, IP addresses and the host of
    /// [`public_url`](Self::public_url). Others are refused with `403`, the defence against DNS
    /// rebinding (a page of another site that makes its own name point at `127.0.0.1`). Needed
    /// behind a reverse proxy on the same machine that passes its own `Host` on.
    pub fn allow_hosts<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options
            .allow_hosts
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Limits and timeouts for each connection (buffer sizes, header timeout, the most
    /// connections at once, the shutdown deadline); see [`ConnectionOptions`].
    pub fn connection(mut self, options: ConnectionOptions) -> Self {
        self.options.connection = options;
        self
    }

    /// Turns on access control with bearer tokens; see [`Auth`]. Off by default.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.options.auth = Some(auth);
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
    pub fn build(mut self) -> Result<ThingServer, ServerError> {
        // From here on the framework has things to say (settings it could not use, above all).
        super::terminal_log::init();
        let prefix = self.check()?;
        let origins = hosts::Origins::from_options(&self.options)?;
        let proxies = Arc::new(
            Proxies::parse(&self.options.trusted_proxies).map_err(ServerError::InvalidProxy)?,
        );
        self.options.connection.proxies = proxies.networks().to_vec();
        let base = Base {
            public_url: origins.public_url.clone(),
            prefix: prefix.clone(),
        };
        let invocations = Invocations::new(
            self.options.invocation_retention,
            self.options.cancellation_grace,
        );
        invocations.set_output_budget(self.options.invocation_output_budget);
        let max_recordings = self.options.max_recordings.max(1);
        // Each recording holds up to three files: kept out of what connections may use.
        self.options.connection.reserved_files = 3 * max_recordings as u64;
        let metrics = Metrics::new(invocations.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let context = Context {
            sse: SseScope::new(
                metrics.clone(),
                shutdown.clone(),
                self.options
                    .sse_heartbeat
                    .max(std::time::Duration::from_millis(10)),
            ),
            metrics,
            invocations,
            base,
            shutdown,
            event_history: self.options.event_history.max(1),
            history: self.options.history.clone(),
            data_folder: self.options.data_folder.clone(),
            recordings: super::affordance::Recordings::new(
                max_recordings,
                self.options.max_recordings_per_stream.max(1),
            ),
        };
        let names: Vec<String> = self.things.iter().map(|t| t.name.clone()).collect();
        if let Some(name) = self.options.history.keys().find(|n| !names.contains(n)) {
            return Err(ServerError::History(format!(
                "`history` names {name:?}, which is not one of this server's Things ({})",
                names.join(", ")
            )));
        }
        let identity = super::identity::Identity::resolve(
            &names,
            self.options.id.as_deref(),
            &self.options.thing_ids,
            self.options.settings_folder.as_deref(),
        )?;
        #[cfg(not(feature = "directory"))]
        if self.options.directory.is_some() {
            return Err(ServerError::Directory(
                "this program was built without the `directory` feature of labthings".into(),
            ));
        }
        #[cfg(feature = "directory")]
        let directory = self
            .options
            .directory
            .as_ref()
            .map(super::directory::Directory::new)
            .transpose()?;
        #[cfg_attr(not(feature = "directory"), allow(unused_mut))]
        let mut lab = super::lab::Lab::from_options(&self.options)?;
        #[cfg(feature = "directory")]
        lab.set_directory(directory.clone());
        let things = self.assemble_things(&context)?;
        let states: Vec<_> = things
            .iter()
            .map(|thing| (thing.name.clone(), thing.state.clone()))
            .collect();
        context
            .invocations
            .set_environment(crate::action::context::Environment {
                data_folder: self.options.data_folder.clone(),
                snapshot: Box::new(move || {
                    states
                        .iter()
                        .map(|(name, state)| (name.clone(), serde_json::Value::Object(state())))
                        .collect()
                }),
            });
        let mut routes = RouteTable::default();
        let (things, descriptions) = self.serve_things(things, &identity, &context, &mut routes);
        self.serve_own_routes(&context, &mut routes);
        if matches!(self.options.ui, Ui::BuiltIn) {
            lab.serve(&mut routes);
        }
        let page = ui::serve(&self.options.ui, &self.options.serve_folders, &mut routes)?;
        let document = self.document(&prefix, &mut routes)?;
        #[cfg(feature = "tls")]
        let tls = super::https::resolve(
            self.tls_certificate.take(),
            self.options.tls.take(),
            self.options.settings_folder.as_deref(),
            &origins.hosts,
        )?;
        #[cfg(not(feature = "tls"))]
        if self.options.tls.is_some() {
            return Err(ServerError::Tls(
                "this program was built without the `tls` feature of labthings".into(),
            ));
        }
        #[cfg(not(feature = "mdns"))]
        if self.options.discovery {
            return Err(ServerError::Discovery(
                "this program was built without the `mdns` feature of labthings".into(),
            ));
        }
        #[cfg(feature = "directory")]
        let directory = directory.map(|directory| {
            super::directory::Registrar::new(directory, descriptions.clone(), &context.metrics)
        });
        #[cfg(not(feature = "directory"))]
        drop(descriptions);
        #[cfg(feature = "mdns")]
        let discovery = self.options.discovery.then(|| super::lifecycle::Discovery {
            title: self
                .options
                .title
                .clone()
                .unwrap_or_else(|| "labthings server".to_owned()),
            td_path: format!("{prefix}{}", layout::well_known_wot()),
        });
        let (api, served) = routes.into_parts();
        // What is served is kept for the test comparing it with the document (`tests.rs`).
        #[cfg(not(test))]
        drop(served);
        let api = api.merge(api_docs::document_route(&document));
        let router = self.layers(
            mount(api, &prefix, page),
            &prefix,
            &context.metrics,
            proxies,
            origins,
        );
        Ok(ThingServer {
            router,
            shutdown: context.shutdown.clone(),
            invocations: context.invocations.clone(),
            metrics: context.metrics.clone(),
            options: self.options.connection,
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "mdns")]
            discovery,
            things,
            _identity: identity,
            #[cfg(feature = "directory")]
            directory,
            openapi: document,
            #[cfg(test)]
            served_paths: served
                .into_iter()
                .map(|path| format!("{prefix}{path}"))
                .collect(),
        })
    }

    /// The first problem the builder noted, a bad access control configuration or a bad
    /// prefix; otherwise the prefix without a trailing `/`.
    fn check(&mut self) -> Result<String, ServerError> {
        if !self.errors.is_empty() {
            return Err(self.errors.remove(0));
        }
        if let Some(auth) = &self.options.auth {
            auth.validate().map_err(ServerError::InvalidAuth)?;
        }
        let prefix = self.options.api_prefix.trim_end_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(ServerError::InvalidPrefix(self.options.api_prefix.clone()));
        }
        Ok(prefix)
    }

    /// Binds, loads settings of, and serves the affordances of every Thing, in the order added.
    fn assemble_things(&mut self, context: &Context) -> Result<Vec<Assembled>, ServerError> {
        std::mem::take(&mut self.things)
            .into_iter()
            .map(|pending| (pending.assemble)(context, self.options.settings_folder.as_deref()))
            .collect()
    }

    /// Adds each Thing's routes and its TD route (the TD advertising the security in force),
    /// and the indexes of Things; returns what the server's life needs of each Thing.
    fn serve_things(
        &self,
        things: Vec<Assembled>,
        identity: &super::identity::Identity,
        context: &Context,
        routes: &mut RouteTable,
    ) -> (Vec<Running>, Arc<Descriptions>) {
        let mut descriptions = Vec::new();
        let mut running = Vec::new();
        for mut thing in things {
            thing.description.id = identity.things.get(&thing.name).cloned();
            if let Some(auth) = &self.options.auth {
                thing
                    .description
                    .use_bearer_security(auth.reads_are_public());
            }
            let description = Arc::new(thing.description);
            routes.merge(thing.routes);
            index::serve_thing(&thing.name, &description, &context.base, routes);
            descriptions.push((thing.name.clone(), description));
            running.push(Running {
                name: thing.name,
                lifecycle: thing.lifecycle,
                streams: thing.streams,
                settings: thing.settings,
            });
        }
        let descriptions = Arc::new(Descriptions {
            things: descriptions,
            id: identity.server.clone(),
            base: context.base.clone(),
            title: self
                .options
                .title
                .clone()
                .unwrap_or_else(|| "labthings server".to_owned()),
        });
        index::serve_indexes(&descriptions, routes);
        (running, descriptions)
    }

    /// The routes every server has: the API description, invocations and metrics.
    fn serve_own_routes(&self, context: &Context, routes: &mut RouteTable) {
        api_docs::document(routes);
        invocations::serve(&context.invocations, &context.base, routes);
        metrics::serve(&context.metrics, routes);
    }

    /// The OpenAPI document of every route, with what the layers may answer (access control
    /// too, when it is on).
    fn document(
        &self,
        prefix: &str,
        routes: &mut RouteTable,
    ) -> Result<utoipa::openapi::OpenApi, ServerError> {
        if let Some(auth) = &self.options.auth {
            auth::document(routes.docs_mut(), auth.reads_are_public());
        }
        problems::document(routes.docs_mut());
        let mut document =
            openapi::document(prefix, routes.docs()).map_err(ServerError::OpenApi)?;
        let info = &mut document.info;
        if let Some(title) = &self.options.title {
            info.title.clone_from(title);
        }
        if let Some(version) = &self.options.version {
            info.version.clone_from(version);
        }
        if let Some(description) = &self.options.description {
            info.description = Some(description.clone());
        }
        if self.options.auth.is_some() {
            openapi::add_bearer_security(&mut document);
        }
        Ok(document)
    }

    /// The layers around every route, innermost first: problem JSON for every error, the body
    /// limit, panics as 500s, access control, CORS (outside access control, so that preflights
    /// need no token), and the request log and metrics.
    fn layers(
        &mut self,
        routes: Router,
        prefix: &str,
        metrics: &Arc<Metrics>,
        proxies: Arc<Proxies>,
        origins: hosts::Origins,
    ) -> Router {
        // Wrapping the whole router (not each route, as `Router::layer` does) lets the mapper
        // see the `Allow` header axum adds to its 405s.
        let mut router = Router::new()
            .fallback_service(
                tower::ServiceBuilder::new()
                    .layer(axum::middleware::map_response(problems::as_problem))
                    .service(routes),
            )
            .layer(axum::middleware::from_fn_with_state(
                self.options.connection.body_read_timeout,
                problems::limit_body,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(problems::MAX_BODY))
            // A bug in a handler is a 500 problem for that request, not a dropped connection.
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                problems::panicked,
            ));
        if let Some(auth) = self.options.auth.take() {
            let guard = Arc::new(Guard {
                auth,
                prefix: prefix.to_owned(),
            });
            router = router.layer(axum::middleware::from_fn_with_state(guard, auth::check));
        }
        if let Some(cors) = origins.cors() {
            router = router.layer(cors);
        }
        let hosts = Arc::new(Hosts::new(&origins.hosts, &origins.origins));
        router
            .layer(axum::middleware::from_fn_with_state(hosts, hosts::check))
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                metrics::observe,
            ))
            // First of all: how the client reached the server, which the host check and
            // every link the server writes use.
            .layer(axum::middleware::from_fn_with_state(
                proxies,
                forwarded::resolve,
            ))
    }
}

/// The API under its prefix, the UI's page at `<prefix>/`, the API browser, and problem JSON
/// for any path nothing serves.
fn mount(api: Router, prefix: &str, page: Option<MethodRouter>) -> Router {
    let routes = match (prefix.is_empty(), page) {
        (true, Some(page)) => api.route("/", page),
        (true, None) => api,
        // Nested, a root route would answer at `/api`, where the page's relative URLs
        // would point outside the prefix: serve it at `/api/` and redirect `/api` there.
        (false, page) => {
            let mut outer = Router::new().nest(prefix, api);
            if let Some(page) = page {
                let slash = format!("{prefix}/");
                outer = outer.route(&slash, page).route(
                    prefix,
                    get(redirect_to_slash).with_state(Arc::<str>::from(slash)),
                );
            }
            outer
        }
    };
    routes
        .merge(api_docs::browser(prefix))
        .fallback(unknown_path)
}

/// `GET <prefix>`: to `<prefix>/`, where the page's relative URLs work.
async fn redirect_to_slash(
    axum::extract::State(slash): axum::extract::State<Arc<str>>,
) -> axum::response::Redirect {
    axum::response::Redirect::permanent(&slash)
}

/// Any path nothing serves: 404 problem JSON.
async fn unknown_path(request: Request) -> axum::response::Response {
    not_found(request.uri().path())
}

fn validate_name(name: &str) -> Result<(), String> {
    if let Some(reason) = layout::invalid_segment(name) {
        return Err(reason.to_owned());
    }
    if layout::RESERVED_THING_NAMES.contains(&name) {
        return Err("the server uses this name for its own routes".to_owned());
    }
    Ok(())
}
