//! Registration with a W3C WoT Thing Description Directory (WoT Discovery §7.3), and reading
//! one for the lab view.
//!
//! [`Registrar`] runs beside the server: it `PUT`s each Thing's TD (absolute links, a
//! `registration.ttl`) at start and every half ttl, retries a directory that is down with a
//! growing pause, logs once per outage and once at recovery, and `DELETE`s the entries on a
//! clean shutdown. The spec refreshes with `PATCH`; domus-tdd-api 1.0.2 answers that with a
//! 500, and a whole `PUT` is as good, so refreshes are `PUT`s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::error::ServerError;
use super::index::Descriptions;
use super::metrics::{DirectoryStatus, Metrics};
use super::options::DirectoryOptions;
use crate::td::TD_MEDIA_TYPE;

/// The environment variable that gives the directory's bearer token.
pub(crate) const TOKEN_VARIABLE: &str = "LABTHINGS_DIRECTORY_TOKEN";
/// The longest pause between tries at a directory that is down.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// How long one request to the directory may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How many pages of Thing Descriptions the lab view reads at most (100 each).
const MAX_PAGES: usize = 20;

/// A directory: its options (the URL without a trailing `/`, the token from the environment
/// if not given; `Debug` hides the token) and an HTTP client for it.
#[derive(Clone, Debug)]
pub(crate) struct Directory {
    options: DirectoryOptions,
    http: reqwest::Client,
}

impl Directory {
    /// # Errors
    ///
    /// [`ServerError::Directory`] for a URL that is not `http(s)://host...`, or a ttl under
    /// 2 s.
    pub(crate) fn new(options: &DirectoryOptions) -> Result<Self, ServerError> {
        let url = options.url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&url).map_err(|error| {
            ServerError::Directory(format!(
                "the directory URL {:?} is not a URL: {error}",
                options.url
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ServerError::Directory(format!(
                "the directory URL {:?} must be http:// or https:// with a host, such as \
                 http://tdd.lab:5050",
                options.url
            )));
        }
        if options.ttl < Duration::from_secs(2) {
            return Err(ServerError::Directory(format!(
                "the ttl must be at least 2 seconds (given {:?}): the server registers again \
                 every half ttl",
                options.ttl
            )));
        }
        let token = options
            .token
            .clone()
            .or_else(|| std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.is_empty()));
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|error| ServerError::Directory(format!("no HTTP client: {error}")))?;
        Ok(Self {
            options: DirectoryOptions {
                url,
                token,
                ..options.clone()
            },
            http,
        })
    }

    /// The directory's URL, without a trailing `/`.
    pub(crate) fn url(&self) -> &str {
        &self.options.url
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.options.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `PUT /things/{id}`: registers (or replaces) a TD.
    async fn put(&self, id: &str, td: &Value) -> Result<(), String> {
        let url = format!("{}/things/{id}", self.options.url);
        let body = serde_json::to_vec(td).map_err(|e| e.to_string())?;
        let response = self
            .request(reqwest::Method::PUT, &url)
            .header(reqwest::header::CONTENT_TYPE, TD_MEDIA_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|error| describe(&error))?;
        expect_success(response, "PUT", &url).await
    }

    /// `DELETE /things/{id}`; an entry already gone (404) is fine.
    async fn delete(&self, id: &str) -> Result<(), String> {
        let url = format!("{}/things/{id}", self.options.url);
        let response = self
            .request(reqwest::Method::DELETE, &url)
            .send()
            .await
            .map_err(|error| describe(&error))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_success(response, "DELETE", &url).await
    }

    /// Every TD the directory lists (`GET /things?offset&limit`, following `Link: rel=next`),
    /// at most [`MAX_PAGES`] pages of 100. A listing that fails with a server error is asked
    /// again (three tries, 300 ms apart): domus-tdd-api 1.0.2 answers 500 when a registration
    /// lands while it lists.
    pub(crate) async fn list(&self) -> Result<Vec<Value>, String> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.list_once().await {
                Err(Failure::Server(reason)) if tries < 3 => {
                    tracing::debug!(directory = self.url(), "listing again: {reason}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(Failure::Server(reason) | Failure::Other(reason)) => return Err(reason),
                Ok(tds) => return Ok(tds),
            }
        }
    }

    async fn list_once(&self) -> Result<Vec<Value>, Failure> {
        let mut tds = Vec::new();
        let mut next = Some(format!("{}/things?offset=0&limit=100", self.options.url));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let response = self
                .request(reqwest::Method::GET, &url)
                .header(
                    reqwest::header::ACCEPT,
                    "application/json, application/ld+json",
                )
                .send()
                .await
                .map_err(|error| Failure::Other(describe(&error)))?;
            let status = response.status();
            if !status.is_success() {
                let reason = format!("GET {url} answered {status}{}", excerpt(response).await);
                return Err(if status.is_server_error() {
                    Failure::Server(reason)
                } else {
                    Failure::Other(reason)
                });
            }
            next = response
                .headers()
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(next_link)
                .map(|href| self.resolve(&href));
            let page: Vec<Value> = response.json().await.map_err(|error| {
                Failure::Other(format!(
                    "GET {url}: not a JSON array of Thing Descriptions: {error}"
                ))
            })?;
            tds.extend(page);
            if pages >= MAX_PAGES {
                break;
            }
        }
        Ok(tds)
    }

    /// A link from the directory, made absolute.
    fn resolve(&self, href: &str) -> String {
        match reqwest::Url::parse(&format!("{}/", self.options.url))
            .and_then(|base| base.join(href))
        {
            Ok(url) => url.to_string(),
            Err(_) => href.to_owned(),
        }
    }
}

/// Why a listing failed: the directory's own error (worth asking again), or anything else.
enum Failure {
    Server(String),
    Other(String),
}

/// The target of the `rel="next"` link in a `Link` header, if there is one.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, parameters) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        parameters
            .split(';')
            .any(|p| {
                p.trim()
                    .strip_prefix("rel=")
                    .is_some_and(|rel| rel.trim_matches('"').split(' ').any(|r| r == "next"))
            })
            .then(|| target.to_owned())
    })
}

/// A transport error in a few words: what could not be done, and why underneath.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The start of a response body, for a message.
async fn excerpt(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        let cut: String = body.chars().take(200).collect();
        format!(": {cut}")
    }
}

async fn expect_success(
    response: reqwest::Response,
    method: &str,
    url: &str,
) -> Result<(), String> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{method} {url} answered {status}{}",
            excerpt(response).await
        ))
    }
}

/// Registers a server's Things with a directory while it runs.
pub(crate) struct Registrar {
    directory: Directory,
    descriptions: Arc<Descriptions>,
    status: Arc<DirectoryStatus>,
}

impl Registrar {
    pub(crate) fn new(
        directory: Directory,
        descriptions: Arc<Descriptions>,
        metrics: &Arc<Metrics>,
    ) -> Self {
        let status = metrics.directory_status(directory.url());
        Self {
            directory,
            descriptions,
            status,
        }
    }

    /// Starts registering; the task ends after `shutdown`, once the entries are deleted.
    pub(crate) fn spawn(
        &self,
        listener: &tokio::net::TcpListener,
        scheme: &'static str,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let base = self.base(listener, scheme);
        tracing::info!(
            directory = self.directory.url(),
            "registering {} Things with the directory, as {base}",
            self.descriptions.things.len()
        );
        let tds: Vec<(String, Value)> = self
            .descriptions
            .things
            .iter()
            .filter_map(|(_, td)| {
                let id = td.id.clone()?;
                let mut value = serde_json::to_value(td.absolute(base.clone())).ok()?;
                value["registration"] =
                    serde_json::json!({"ttl": self.directory.options.ttl.as_secs_f64().round() as u64});
                Some((id, value))
            })
            .collect();
        let run = Run {
            directory: self.directory.clone(),
            status: self.status.clone(),
            tds,
        };
        tokio::spawn(run.until(shutdown))
    }

    /// The `base` of registered TDs: the public URL, or the address the server listens on
    /// (for an unspecified address, the one this machine reaches the directory from).
    fn base(&self, listener: &tokio::net::TcpListener, scheme: &str) -> String {
        if let Some(url) = &self.descriptions.base.public_url {
            return url.clone();
        }
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let ip = if local.ip().is_unspecified() {
            let toward = reqwest::Url::parse(self.directory.url())
                .ok()
                .and_then(|url| url.socket_addrs(|| None).ok())
                .and_then(|addresses| addresses.into_iter().next());
            match toward.and_then(|address| local_ip_toward(address, local.ip())) {
                Some(ip) => {
                    tracing::warn!(
                        "the server listens on every interface and has no `public_url`: its \
                         Things are registered under {ip}, the address it reaches the \
                         directory from. Set `public_url` to register a name instead"
                    );
                    ip
                }
                None => local.ip(),
            }
        } else {
            local.ip()
        };
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        format!(
            "{scheme}://{host}:{}{}/",
            local.port(),
            self.descriptions.base.prefix
        )
    }
}

/// The local address a connection to `target` would leave from (a UDP socket is connected,
/// which sends nothing).
fn local_ip_toward(target: SocketAddr, bound: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = if bound.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// The registration loop of one server.
struct Run {
    directory: Directory,
    status: Arc<DirectoryStatus>,
    /// Each Thing's id and the TD to register.
    tds: Vec<(String, Value)>,
}

impl Run {
    async fn until(self, shutdown: CancellationToken) {
        let refresh = self.directory.options.ttl / 2;
        let mut pause = Duration::from_secs(1);
        let mut down: Option<String> = None;
        loop {
            // A round is never cut short (a shutdown waits for it): a `PUT` abandoned midway
            // could still land at the directory after the `DELETE`s, and bring the entry back.
            let next = match self.register_all().await {
                Ok(()) => {
                    if let Some(reason) = down.take() {
                        tracing::info!(
                            directory = self.directory.url(),
                            "the directory answers again (it had failed: {reason}); {} Things \
                             are registered",
                            self.tds.len()
                        );
                    }
                    pause = Duration::from_secs(1);
                    refresh
                }
                Err(reason) => {
                    if down.is_none() {
                        tracing::warn!(
                            directory = self.directory.url(),
                            "cannot register with the directory: {reason}. The server goes on \
                             serving and tries again (this is logged again only when the \
                             directory is back)"
                        );
                        down = Some(reason);
                    }
                    let wait = pause.min(refresh);
                    pause = (pause * 2).min(MAX_PAUSE);
                    wait
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(next) => {}
            }
        }
        self.unregister_all().await;
    }

    /// Registers every TD; the first failure ends the round (the directory is down).
    async fn register_all(&self) -> Result<(), String> {
        let mut registered = 0;
        for (id, td) in &self.tds {
            match self.directory.put(id, td).await {
                Ok(()) => {
                    registered += 1;
                    self.status.registered();
                }
                Err(reason) => {
                    self.status.failed(registered);
                    return Err(reason);
                }
            }
        }
        self.status.round_done(registered);
        Ok(())
    }

    /// Deletes every entry, each within the request timeout; failures are logged.
    async fn unregister_all(&self) {
        let deletions = self
            .tds
            .iter()
            .map(|(id, _)| async move { (id, self.directory.delete(id).await) });
        let mut removed = 0;
        for (id, result) in futures_util::future::join_all(deletions).await {
            match result {
                Ok(()) => removed += 1,
                Err(reason) => tracing::warn!(
                    directory = self.directory.url(),
                    id = id.as_str(),
                    "could not remove the entry from the directory: {reason}; it expires \
                     after its ttl"
                ),
            }
        }
        self.status.round_done(0);
        if removed > 0 {
            tracing::info!(
                directory = self.directory.url(),
                "removed {removed} Things from the directory"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        assert_eq!(
            next_link(
                r#"</things>; rel="canonical"; etag="x",</things?offset=2&limit=2>; rel="next""#
            ),
            Some("/things?offset=2&limit=2".to_owned())
        );
        assert_eq!(next_link(r#"</things>; rel="canonical""#), None);
    }

    #[test]
    fn a_directory_url_must_be_http_and_the_ttl_long_enough() {
        let refused = |options: DirectoryOptions| Directory::new(&options).unwrap_err().to_string();
        assert!(refused(DirectoryOptions::new("tdd.lab:5050")).contains("http://"));
        assert!(refused(DirectoryOptions::new("not a url")).contains("not a URL"));
        assert!(
            refused(DirectoryOptions::new("http://tdd").ttl(Duration::from_secs(1)))
                .contains("at least 2 seconds")
        );
        let directory =
            Directory::new(&DirectoryOptions::new("http://tdd.lab:5050/").token("s3cret")).unwrap();
        assert!(
            !format!("{directory:?}").contains("s3cret"),
            "the token is not printed"
        );
        assert_eq!(directory.url(), "http://tdd.lab:5050");
        assert_eq!(
            directory.resolve("/things?offset=100&limit=100"),
            "http://tdd.lab:5050/things?offset=100&limit=100"
        );
    }
}
