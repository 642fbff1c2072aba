//! Which `Host` and `Origin` the server answers: the defences that CORS does not give.
//!
//! - **DNS rebinding.** A web page from `evil.example` can make its own name resolve to
//!   `127.0.0.1` and then read anything a server on this machine answers, because to the browser
//!   it is the page's own origin. When the server is bound to a loopback address, a request
//!   whose `Host` is a name other than `localhost` (or a name the server was given with
//!   [`allow_hosts`](crate::server::ThingServerBuilder::allow_hosts) or its public URL) is refused with
//!   `403`. IP literals are always accepted: rebinding needs a name. Jupyter does the same.
//! - **Cross-site requests.** Browsers let any page open a websocket to any server, and send
//!   "simple" cross-site requests (an HTML form's POST, a `fetch` without custom headers)
//!   without asking first; CORS only hides the answer. So a page from another site open in a
//!   lab member's browser could observe every value, or start an action such as `stage/home`
//!   with an empty form POST. A websocket upgrade, or a request with an unsafe method (`POST`,
//!   `PUT`, `DELETE`, ...), whose `Origin` is neither this server's own (or its public URL's)
//!   nor one of [`allow_origins`](crate::server::ThingServerBuilder::allow_origins) is refused with
//!   `403`. Clients that send no `Origin` (scripts, node-wot, the Python client) are not
//!   browsers and pass. (Bodies must be JSON besides: a form's body is a `415`.)
//!
//! Both need [`crate::serve`] underneath (it tells each request which address it arrived on);
//! a router served some other way skips the `Host` check.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tower_http::cors::CorsLayer;

use super::error::ServerError;
use super::forwarded::{Reached, request_host};
use super::options::ServerOptions;
use crate::Problem;
use crate::serve::LocalAddr;

/// What the options say about names and origins: the hosts and origins the server answers
/// besides its own (from `allow_hosts`, `allow_origins` and the host of `public_url`), and the
/// origins CORS lets in.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    /// The public URL, ending in `/`.
    pub(crate) public_url: Option<String>,
    /// Host names answered on loopback besides `localhost` and IP addresses.
    pub(crate) hosts: Vec<String>,
    /// Origins that may write and open websockets.
    pub(crate) origins: Vec<String>,
    /// Origins given to `allow_origins`, which CORS lets read the answers.
    cors: Vec<HeaderValue>,
}

impl Origins {
    /// Checks and gathers the names and origins of `options`.
    pub(crate) fn from_options(options: &ServerOptions) -> Result<Self, ServerError> {
        let mut names = Self {
            hosts: options.allow_hosts.clone(),
            ..Self::default()
        };
        if let Some(url) = &options.public_url {
            let mut url = url.clone();
            if !url.ends_with('/') {
                url.push('/');
            }
            // Its host is one of the server's names, and its pages are the server's own.
            if let Some((scheme, rest)) = url.split_once("://")
                && let Some(authority) = rest.split('/').next()
            {
                let host = authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, host)| host);
                names.hosts.push(host.to_owned());
                names.origins.push(format!("{scheme}://{host}"));
            }
            names.public_url = Some(url);
        }
        for origin in &options.allow_origins {
            let trimmed = origin.trim_end_matches('/');
            let host = trimmed
                .strip_prefix("http://")
                .or_else(|| trimmed.strip_prefix("https://"));
            let valid = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', ' ', '*']));
            match HeaderValue::from_str(trimmed) {
                Ok(value) if valid => {
                    names.origins.push(trimmed.to_owned());
                    names.cors.push(value);
                }
                _ => return Err(ServerError::InvalidOrigin(origin.clone())),
            }
        }
        Ok(names)
    }

    /// CORS for the origins of `allow_origins`: reads, writes and streams, with `Content-Type`
    /// and `Authorization` headers, no cookies. None when none were given.
    pub(crate) fn cors(&self) -> Option<CorsLayer> {
        if self.cors.is_empty() {
            return None;
        }
        Some(
            CorsLayer::new()
                .allow_origin(self.cors.clone())
                .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                .expose_headers([
                    header::HeaderName::from_static(crate::stream::TIMESTAMP_HEADER),
                    header::HeaderName::from_static(crate::stream::FRAME_INDEX_HEADER),
                ]),
        )
    }
}

/// Why a request's `Host` or `Origin` cannot be believed, if it cannot (RFC 9112 §3.2: `400`
/// for a missing, repeated or invalid `Host`): two `Host` or `Origin` headers, an empty or
/// malformed `Host` (a user name, spaces, a list), or an absolute-form target whose authority
/// is not the `Host`. Links written from such a request would point anywhere.
fn malformed(request: &Request) -> Option<String> {
    let headers = request.headers();
    let hosts: Vec<_> = headers.get_all(header::HOST).iter().collect();
    if hosts.len() > 1 {
        return Some("The request has more than one `Host` header.".to_owned());
    }
    if headers.get_all(header::ORIGIN).iter().count() > 1 {
        return Some("The request has more than one `Origin` header.".to_owned());
    }
    let authority = request.uri().authority();
    if let Some(authority) = authority
        && authority.as_str().contains('@')
    {
        return Some("The request target names a user (`user@host`).".to_owned());
    }
    let Some(host) = hosts.first() else {
        // HTTP/2 names the host in `:authority`; HTTP/1.0 may leave it out.
        if request.version() == axum::http::Version::HTTP_11 && authority.is_none() {
            return Some("An HTTP/1.1 request needs a `Host` header.".to_owned());
        }
        return None;
    };
    let host = match host.to_str() {
        Ok(host) if valid_host(host) => host,
        _ => {
            return Some(format!(
                "The `Host` header is not a host name or address with an optional port: {:?}.",
                String::from_utf8_lossy(host.as_bytes())
                    .chars()
                    .take(100)
                    .collect::<String>()
            ));
        }
    };
    if let Some(authority) = authority
        && !authority.as_str().eq_ignore_ascii_case(host)
        && request.version() <= axum::http::Version::HTTP_11
    {
        return Some(format!(
            "The request target's host `{authority}` is not its `Host` header's, `{host}`."
        ));
    }
    None
}

/// `name[:port]` or `[v6][:port]`: a host as a `Host` header may give it.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    });
    let name_ok = if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'))
    };
    port_ok && name_ok
}

/// The names and origins the server answers besides its own.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    /// Host names (lower case, without a port) accepted on loopback besides `localhost`.
    names: Vec<String>,
    /// `*` was given: any `Host` is accepted.
    any_name: bool,
    /// Origins (lower case `scheme://host[:port]`) whose pages may open websockets.
    origins: Vec<String>,
}

impl Hosts {
    pub(crate) fn new(names: &[String], origins: &[String]) -> Self {
        Self {
            names: names
                .iter()
                .filter(|name| *name != "*")
                .map(|name| host_name(name).to_ascii_lowercase())
                .collect(),
            any_name: names.iter().any(|name| name == "*"),
            origins: origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request for `host` (a `Host` header's value) may be answered.
    fn allows_host(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        self.any_name
            || name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }

    /// Whether a page from `origin` may open a websocket to the server at `host`.
    fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let same = origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((scheme, authority), host)| {
                without_default_port(scheme, authority)
                    == without_default_port(scheme, &host.to_ascii_lowercase())
            });
        same || self.origins.contains(&origin)
    }
}

/// The layer: refuses rebound `Host`s on loopback and cross-site websocket upgrades.
pub(crate) async fn check(
    State(hosts): State<Arc<Hosts>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(reason) = malformed(&request) {
        return Problem::new(StatusCode::BAD_REQUEST)
            .with_title("Malformed request")
            .with_detail(reason)
            .into_response();
    }
    let reached = request.extensions().get::<Reached>().cloned();
    let host = match &reached {
        Some(reached) => reached.host.clone(),
        None => request_host(request.headers(), request.uri()),
    };
    // A trusted reverse proxy answers for the names it forwards (its `server_name`s).
    let via_proxy = reached.as_ref().is_some_and(|reached| reached.forwarded);
    let on_loopback = request
        .extensions()
        .get::<LocalAddr>()
        .is_some_and(|LocalAddr(local)| local.ip().is_loopback());
    if on_loopback
        && !via_proxy
        && let Some(host) = &host
        && !hosts.allows_host(host)
    {
        tracing::warn!(%host, "refused a request for an unknown host name (DNS rebinding?)");
        return Problem::new(StatusCode::FORBIDDEN)
            .with_title("Unknown host name")
            .with_detail(format!(
                "This server is bound to a loopback address and answers requests for \
                 `localhost` and IP addresses only, not for `{host}`: a page that reaches it \
                 under another name may be a DNS rebinding attack. To serve it under this \
                 name, add it to `allow_hosts` in the configuration."
            ))
            .into_response();
    }
    let websocket = is_websocket_upgrade(request.headers());
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if (websocket || unsafe_method)
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or("(not text)");
        let own = reached.as_ref().and_then(Reached::origin);
        let same_site = own.is_some_and(|own| same_origin(origin, &own));
        if !same_site && !hosts.allows_origin(origin, host.as_deref()) {
            let what = if websocket {
                "open a websocket to this server"
            } else {
                "change anything on this server (write, invoke or cancel)"
            };
            tracing::warn!(%origin, method = %request.method(), "refused a request from another site's page");
            return Problem::new(StatusCode::FORBIDDEN)
                .with_title("Request from another site")
                .with_detail(format!(
                    "A page from `{}` may not {what}: only pages from the server itself, or \
                     from an origin in `allow_origins`, may.",
                    origin.chars().take(200).collect::<String>()
                ))
                .into_response();
        }
    }
    next.run(request).await
}

/// The host the request is for: `Host`, or the URI's authority (HTTP/2's `:authority`).
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// `host[:port]` without the port; IPv6 literals lose their brackets.
pub(crate) fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => authority,
    }
}

/// `authority` without the scheme's default port (`:80` for http, `:443` for https).
/// Whether two origins (`scheme://host[:port]`) are one, default ports aside.
fn same_origin(a: &str, b: &str) -> bool {
    let normal = |origin: &str| {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        match origin.split_once("://") {
            Some((scheme, authority)) => {
                format!("{scheme}://{}", without_default_port(scheme, authority))
            }
            None => origin,
        }
    };
    normal(a) == normal(b)
}

fn without_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_are_names_or_addresses_with_an_optional_port() {
        for good in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:80",
            "[::1]:5000",
            "[::1]",
            "lab-1.example",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "user@localhost",
            "local host",
            "a,b",
            "localhost:",
            "localhost:x",
            "[nope]:1",
            "::1",
            "a/b",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn names_other_than_localhost_and_ip_literals_need_allowing() {
        let hosts = Hosts::new(&["Microscope.lab:8080".to_owned()], &[]);
        for allowed in [
            "127.0.0.1:5000",
            "[::1]:5000",
            "192.168.1.20",
            "localhost:5000",
            "LOCALHOST",
            "app.localhost:80",
            "microscope.lab",
            "MICROSCOPE.LAB:5000",
        ] {
            assert!(hosts.allows_host(allowed), "{allowed}");
        }
        for refused in [
            "evil.example:5000",
            "localhost.evil.example",
            "microscope.lab.evil",
        ] {
            assert!(!hosts.allows_host(refused), "{refused}");
        }
        assert!(Hosts::new(&["*".to_owned()], &[]).allows_host("anything.example"));
    }

    #[test]
    fn websocket_origins_are_the_server_itself_or_allowed() {
        let hosts = Hosts::new(&[], &["https://lab-ui.local:8443/".to_owned()]);
        let host = Some("127.0.0.1:5000");
        assert!(hosts.allows_origin("http://127.0.0.1:5000", host));
        assert!(hosts.allows_origin("https://lab-ui.local:8443", host));
        assert!(hosts.allows_origin("http://microscope.lab", Some("microscope.lab:80")));
        assert!(!hosts.allows_origin("http://127.0.0.1:5001", host));
        assert!(!hosts.allows_origin("https://evil.example", host));
        assert!(!hosts.allows_origin("null", host));
        assert!(!hosts.allows_origin("http://127.0.0.1:5000", None));
    }
}
