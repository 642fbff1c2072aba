//! `ThingClient`: a Thing driven through its Thing Description.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use bytes::Bytes;
use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::http::{Http, expect_success, read_json};
use super::invocation::Invocation;
use super::{ClientError, MjpegClient, MjpegClientBuilder};

/// The longest `Prefer: wait` the client asks of a server (ours caps it at a minute).
const MAX_SERVER_WAIT: Duration = Duration::from_secs(30);

/// Configures a [`ThingClient`]; from [`ThingClient::builder`].
#[derive(Debug, Clone)]
#[must_use = "call `connect` to fetch the Thing Description"]
pub struct ThingClientBuilder {
    url: String,
    http: Option<reqwest::Client>,
    headers: HeaderMap,
    request_timeout: Duration,
    action_timeout: Duration,
}

impl ThingClientBuilder {
    /// Sends this header with every request, websocket and stream.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request, websocket and stream.
    pub fn bearer_token(self, token: &str) -> Self {
        match super::bearer(token) {
            Some(value) => self.header(header::AUTHORIZATION, value),
            None => self,
        }
    }

    /// Time allowed for each request (not streams or websockets). Default 30 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long [`ThingClient::invoke`] waits for an action before cancelling it. Default
    /// 5 minutes.
    pub fn action_timeout(mut self, timeout: Duration) -> Self {
        self.action_timeout = timeout;
        self
    }

    /// Uses this HTTP client (for its proxy, TLS or pool settings).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Fetches the Thing Description and returns the client.
    pub async fn connect(self) -> Result<ThingClient, ClientError> {
        let url = Url::parse(&self.url).map_err(|error| ClientError::InvalidUrl {
            url: self.url.clone(),
            reason: error.to_string(),
        })?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.request_timeout)
                .build()
                .map_err(|error| ClientError::http(&url, error))?,
        };
        let response = http
            .get(url.clone())
            .headers(self.headers.clone())
            .header(header::ACCEPT, "application/td+json, application/json")
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|error| ClientError::http(&url, error))?;
        let td: Value = read_json(response, "the Thing Description").await?;
        if !td.is_object() || !td["title"].is_string() {
            return Err(ClientError::protocol(
                &url,
                "the answer is not a Thing Description (a JSON object with a `title`)",
            ));
        }
        let base = td["base"]
            .as_str()
            .and_then(|base| url.join(base).ok())
            .unwrap_or_else(|| url.clone());
        Ok(ThingClient {
            inner: Arc::new(Inner {
                http: Http {
                    client: http,
                    headers: self.headers,
                    request_timeout: self.request_timeout,
                    url: url.clone(),
                },
                url,
                base,
                td,
                action_timeout: self.action_timeout,
            }),
        })
    }
}

/// A client for one Thing, driven through its Thing Description (TD).
///
/// [`connect`](Self::connect) fetches the TD; every other call finds its URL there, so the
/// client works with any server that describes its Things the way LabThings does (ours, or
/// labthings-fastapi). Cloning is cheap and shares the connection pool.
///
/// - Properties: [`get`](Self::get) and [`set`](Self::set), typed by the caller.
/// - Actions: [`invoke`](Self::invoke) waits for the output; [`start`](Self::start) returns an
///   [`Invocation`] to wait for, poll or cancel.
/// - Observation over the websocket: [`observe_property`](Self::observe_property) and
///   [`observe_action`](Self::observe_action).
/// - Streams: [`stream`](Self::stream) gives an [`MjpegClient`] builder.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use labthings::client::ThingClient;
///
/// # async fn run() -> Result<(), labthings::client::ClientError> {
/// let stage = ThingClient::builder("http://127.0.0.1:5000/stage/")
///     .action_timeout(Duration::from_secs(60))
///     .connect()
///     .await?;
/// let position: serde_json::Value = stage.get("position").await?;
/// stage.invoke::<()>("move_relative", &serde_json::json!({"x": 100})).await?;
/// let homing = stage.start("home", &()).await?;
/// homing.cancel().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ThingClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Http,
    url: Url,
    base: Url,
    td: Value,
    action_timeout: Duration,
}

impl ThingClient {
    /// The headers sent with every request (authorisation, and any the builder added).
    pub(super) fn headers(&self) -> &HeaderMap {
        &self.inner.http.headers
    }

    /// The timeout of one request.
    pub(super) fn request_timeout(&self) -> Duration {
        self.inner.http.request_timeout
    }

    /// A builder for a client of the Thing at `url` (the address of its Thing Description,
    /// e.g. `http://127.0.0.1:5000/camera/`).
    pub fn builder(url: impl Into<String>) -> ThingClientBuilder {
        ThingClientBuilder {
            url: url.into(),
            http: None,
            headers: HeaderMap::new(),
            request_timeout: Duration::from_secs(30),
            action_timeout: Duration::from_secs(300),
        }
    }

    /// Fetches the Thing Description at `url` and returns a client with default settings.
    pub async fn connect(url: impl Into<String>) -> Result<Self, ClientError> {
        Self::builder(url).connect().await
    }

    /// The Thing Description.
    pub fn description(&self) -> &Value {
        &self.inner.td
    }

    /// The Thing's title.
    pub fn title(&self) -> &str {
        self.inner.td["title"].as_str().unwrap_or_default()
    }

    /// The URL the Thing Description was fetched from.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The names of the Thing's properties.
    pub fn properties(&self) -> Vec<String> {
        self.names("properties")
    }

    /// The names of the Thing's actions.
    pub fn actions(&self) -> Vec<String> {
        self.names("actions")
    }

    /// The names of the Thing's MJPEG streams (its `alternate` links of type
    /// `multipart/x-mixed-replace`).
    pub fn streams(&self) -> Vec<String> {
        self.stream_links()
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// Reads a property as `T`.
    pub async fn get<T: DeserializeOwned>(&self, property: &str) -> Result<T, ClientError> {
        let url = self.form("properties", property, "readproperty")?;
        let response = self.send(self.request(Method::GET, url)).await?;
        read_json(response, &format!("property `{property}`")).await
    }

    /// Writes a property.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        property: &str,
        value: &T,
    ) -> Result<(), ClientError> {
        let url = self.form("properties", property, "writeproperty")?;
        let method = self.method("properties", property, "writeproperty", Method::PUT);
        let body = to_json(value, &format!("the value for `{property}`"))?;
        let response = self.send(self.request(method, url).json(&body)).await?;
        expect_success(response).await.map(drop)
    }

    /// Invokes an action and waits for its output, up to the action timeout; an action still
    /// running then is cancelled and the error is [`ClientError::Timeout`]. Pass `&()` for an
    /// action without arguments.
    pub async fn invoke<O: DeserializeOwned>(
        &self,
        action: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Result<O, ClientError> {
        let timeout = self.inner.action_timeout;
        let mut invocation = self.start_waiting(action, input, timeout).await?;
        let finished = invocation.wait(timeout).await.map(drop);
        match finished {
            Ok(()) => invocation.output(),
            Err(error @ ClientError::Timeout { .. }) => {
                // Best effort: the timeout is the error to report either way.
                let _ = invocation.cancel().await;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Starts an action and returns at once with its [`Invocation`].
    pub async fn start(
        &self,
        action: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Result<Invocation, ClientError> {
        self.start_waiting(action, input, Duration::ZERO).await
    }

    async fn start_waiting(
        &self,
        action: &str,
        input: &(impl Serialize + ?Sized),
        wait: Duration,
    ) -> Result<Invocation, ClientError> {
        let url = self.form("actions", action, "invokeaction")?;
        let mut body = to_json(input, &format!("the input of `{action}`"))?;
        if body.is_null() {
            body = json!({});
        }
        let mut request = self.request(Method::POST, url).json(&body);
        let wait = wait.min(MAX_SERVER_WAIT);
        if !wait.is_zero() {
            // Servers that know RFC 7240 answer once the action is done; others ignore it.
            request = request
                .header("prefer", format!("wait={}", wait.as_secs()))
                .timeout(self.inner.http.request_timeout + wait);
        }
        let response = self.send(request).await?;
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let info: Value = read_json(response, &format!("the invocation of `{action}`")).await?;
        let href = info["href"]
            .as_str()
            .or(location.as_deref())
            .ok_or_else(|| {
                ClientError::protocol(&self.inner.base, "the invocation has no `href`")
            })?;
        let href = self.resolve(href)?;
        Ok(Invocation {
            http: self.inner.http.clone(),
            action: action.to_owned(),
            href,
            info,
        })
    }

    /// Fetches a blob output (`{"href": ..., "media_type": ...}`) of an action.
    pub async fn blob(&self, output: &Value) -> Result<Bytes, ClientError> {
        let href = output["href"].as_str().ok_or_else(|| {
            ClientError::protocol(&self.inner.base, "a blob output has an `href`")
        })?;
        let url = self.resolve(href)?;
        let response = self.send(self.request(Method::GET, url.clone())).await?;
        let response = expect_success(response).await?;
        response
            .bytes()
            .await
            .map_err(|error| ClientError::http(&url, error))
    }

    /// A builder for an [`MjpegClient`] of one of the Thing's streams, with this client's
    /// headers. Call [`connect`](MjpegClientBuilder::connect) on it.
    pub fn stream(&self, name: &str) -> Result<MjpegClientBuilder, ClientError> {
        let href = self
            .stream_links()
            .find(|(stream, _)| *stream == name)
            .map(|(_, href)| href.to_owned())
            .ok_or_else(|| ClientError::NoSuchAffordance {
                kind: "stream",
                name: name.to_owned(),
                available: self.streams().join(", "),
            })?;
        let url = self.resolve(&href)?;
        let mut builder =
            MjpegClient::builder(url.as_str()).http_client(self.inner.http.client.clone());
        for (name, value) in &self.inner.http.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        Ok(builder)
    }

    fn names(&self, kind: &str) -> Vec<String> {
        self.inner.td[kind]
            .as_object()
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn stream_links(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner.td["links"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|link| {
                link["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("multipart/x-mixed-replace"))
            })
            .filter_map(|link| {
                let href = link["href"].as_str()?;
                let name = href.trim_end_matches('/').rsplit('/').next()?;
                Some((name, href))
            })
    }

    /// The URL of the form of affordance `name` that does `op`.
    pub(super) fn form(
        &self,
        kind: &'static str,
        name: &str,
        op: &str,
    ) -> Result<Url, ClientError> {
        self.form_where(kind, name, op, |_| true)
    }

    /// The URL of the first form of an affordance that does `op` and that `fits`.
    pub(super) fn form_where(
        &self,
        kind: &'static str,
        name: &str,
        op: &str,
        fits: impl Fn(&Value) -> bool,
    ) -> Result<Url, ClientError> {
        let affordance = self.affordance(kind, name)?;
        let forms = affordance["forms"].as_array().into_iter().flatten();
        let href = forms
            .clone()
            .find(|form| does(form, op) && fits(form))
            .or_else(|| {
                // A form without `op` does the kind's default operations.
                let default = ["readproperty", "writeproperty", "invokeaction"].contains(&op);
                forms.clone().find(|form| default && form["op"].is_null())
            })
            .and_then(|form| form["href"].as_str())
            .ok_or_else(|| {
                ClientError::protocol(
                    &self.inner.url,
                    format!("{kind} `{name}` has no form for `{op}`"),
                )
            })?;
        self.resolve(href)
    }

    fn method(&self, kind: &'static str, name: &str, op: &str, default: Method) -> Method {
        self.affordance(kind, name)
            .ok()
            .and_then(|affordance| {
                affordance["forms"]
                    .as_array()?
                    .iter()
                    .find(|form| does(form, op))?["htv:methodName"]
                    .as_str()?
                    .parse()
                    .ok()
            })
            .unwrap_or(default)
    }

    fn affordance(&self, kind: &'static str, name: &str) -> Result<&Value, ClientError> {
        self.inner.td[kind]
            .get(name)
            .ok_or_else(|| ClientError::NoSuchAffordance {
                kind: match kind {
                    "properties" => "property",
                    _ => "action",
                },
                name: name.to_owned(),
                available: self.names(kind).join(", "),
            })
    }

    fn resolve(&self, href: &str) -> Result<Url, ClientError> {
        self.inner
            .base
            .join(href)
            .map_err(|error| ClientError::InvalidUrl {
                url: href.to_owned(),
                reason: error.to_string(),
            })
    }

    /// A request with the client's headers and no time limit (for streams that stay open).
    pub(super) fn request_unbounded(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.inner.http.request_unbounded(method, url)
    }

    pub(super) fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.inner.http.request(method, url)
    }

    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        self.inner.http.send(request).await
    }
}

/// Whether a TD form does `op` (`op` is a string or an array of strings).
fn does(form: &Value, op: &str) -> bool {
    match &form["op"] {
        Value::String(one) => one == op,
        Value::Array(ops) => ops.iter().any(|o| o == op),
        _ => false,
    }
}

fn to_json(value: &(impl Serialize + ?Sized), what: &str) -> Result<Value, ClientError> {
    serde_json::to_value(value).map_err(|source| ClientError::Json {
        what: what.to_owned(),
        source,
    })
}
