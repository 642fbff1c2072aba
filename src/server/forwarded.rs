//! [`Reached`]: how a client reached the server (scheme, host, and the path prefix a reverse
//! proxy publishes it under), which every absolute URL the server writes is built from.
//!
//! Directly, that is the connection's own scheme (`https` over TLS) and the request's `Host`
//! (or HTTP/2's `:authority`). Through a reverse proxy listed in
//! [`trusted_proxies`](crate::server::ThingServerBuilder::trusted_proxies), the proxy says it:
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Prefix`, or the standard
//! `Forwarded` header's `proto` and `host` (RFC 7239), the first (the client's) of each list.
//! From anyone else these headers are ignored, so a client cannot make the server write links
//! to a host of its choosing.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::serve::{ClientAddr, TlsConnection};

/// The proxies whose forwarded headers are believed.
#[derive(Debug, Default)]
pub(crate) struct Proxies(Vec<ipnet::IpNet>);

impl Proxies {
    /// Parses addresses (`127.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
    pub(crate) fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!(
                            "trusted proxy {entry:?} is not an IP address or network \
                             (such as \"127.0.0.1\" or \"10.0.0.0/8\")"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub(crate) fn networks(&self) -> &[ipnet::IpNet] {
        &self.0
    }

    fn trusts(&self, client: IpAddr) -> bool {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|network| network.contains(&client))
    }
}

/// How the client reached the server, in each request's extensions (and an extractor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reached {
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// The host and port the client asked for, if it said.
    pub(crate) host: Option<String>,
    /// The path a proxy publishes the server under (`/lab`), or empty.
    pub(crate) prefix: String,
    /// Whether a trusted proxy said any of this.
    pub(crate) forwarded: bool,
}

impl Reached {
    /// From the connection and the request alone.
    fn direct(parts: &Parts) -> Self {
        let host = request_host(&parts.headers, &parts.uri).filter(|host| usable_host(host));
        Self {
            scheme: if parts.extensions.get::<TlsConnection>().is_some() {
                "https"
            } else {
                "http"
            },
            host,
            prefix: String::new(),
            forwarded: false,
        }
    }

    /// As the client reached the server: through a trusted proxy, as the proxy says.
    fn of(parts: &Parts, proxies: &Proxies) -> Self {
        let mut reached = Self::direct(parts);
        let from_proxy = parts
            .extensions
            .get::<ClientAddr>()
            .is_some_and(|ClientAddr(client)| proxies.trusts(client.ip()));
        if from_proxy {
            reached.apply(&parts.headers);
        }
        reached
    }

    fn apply(&mut self, headers: &HeaderMap) {
        let (mut proto, mut host) = forwarded_element(headers);
        if let Some(value) = first_of(headers, "x-forwarded-proto") {
            proto = Some(value);
        }
        if let Some(value) = first_of(headers, "x-forwarded-host") {
            host = Some(value);
        }
        if let Some(proto) = proto {
            match proto.to_ascii_lowercase().as_str() {
                "https" => self.scheme = "https",
                "http" => self.scheme = "http",
                _ => tracing::debug!(%proto, "ignored a forwarded protocol"),
            }
            self.forwarded = true;
        }
        if let Some(host) = host.filter(|host| usable_host(host)) {
            self.host = Some(host);
            self.forwarded = true;
        }
        if let Some(prefix) = first_of(headers, "x-forwarded-prefix") {
            let prefix = prefix.trim_end_matches('/');
            if prefix.is_empty() || usable_prefix(prefix) {
                self.prefix = prefix.to_owned();
                self.forwarded = true;
            } else {
                tracing::debug!(%prefix, "ignored a forwarded prefix");
            }
        }
    }

    /// The origin a page served this way has (`https://lab.example`).
    pub(crate) fn origin(&self) -> Option<String> {
        self.host
            .as_ref()
            .map(|host| format!("{}://{host}", self.scheme))
    }
}

/// The host (and port) a request names: its `Host` header, or HTTP/2's `:authority`.
pub(crate) fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(ToString::to_string))
}

/// The first value of a comma-separated header (the client's end of a proxy chain).
fn first_of(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// `proto` and `host` of the first element of `Forwarded` (RFC 7239).
fn forwarded_element(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let Some(value) = headers
        .get(header::FORWARDED)
        .and_then(|value| value.to_str().ok())
    else {
        return (None, None);
    };
    let first = value.split(',').next().unwrap_or_default();
    let (mut proto, mut host) = (None, None);
    for pair in first.split(';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "proto" => proto = Some(value),
            "host" => host = Some(value),
            _ => {}
        }
    }
    (proto, host)
}

/// A host (and port) that can go into a URL as it is.
fn usable_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// A path prefix that can go into a URL as it is: `/` then segments of safe characters.
fn usable_prefix(prefix: &str) -> bool {
    prefix.len() <= 255
        && prefix.starts_with('/')
        && !prefix.contains("//")
        && prefix.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        })
}

/// Middleware: works out [`Reached`] once per request.
pub(crate) async fn resolve(
    State(proxies): State<Arc<Proxies>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let reached = Reached::of(&parts, &proxies);
    parts.extensions.insert(reached);
    next.run(Request::from_parts(parts, body)).await
}

impl<S: Send + Sync> FromRequestParts<S> for Reached {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self::direct(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;

    fn parts(client: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = HttpRequest::builder().uri("/things");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ClientAddr(format!("{client}:40000").parse().unwrap()));
        parts
    }

    #[test]
    fn forwarded_headers_count_from_trusted_proxies_only() {
        let proxies = Proxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let headers = [
            ("host", "127.0.0.1:5000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "lab.example, inner.proxy"),
            ("x-forwarded-prefix", "/lab/"),
        ];
        let trusted = Reached::of(&parts("10.1.2.3", &headers), &proxies);
        assert_eq!(trusted.scheme, "https");
        assert_eq!(trusted.host.as_deref(), Some("lab.example"));
        assert_eq!(trusted.prefix, "/lab");
        assert!(trusted.forwarded);
        let stranger = Reached::of(&parts("192.168.1.9", &headers), &proxies);
        assert_eq!(stranger.scheme, "http");
        assert_eq!(stranger.host.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(stranger.prefix, "");
        assert!(!stranger.forwarded);
    }

    #[test]
    fn the_standard_forwarded_header_is_read_and_bad_values_are_ignored() {
        let proxies = Proxies::parse(&["::1".into(), "127.0.0.1".into()]).unwrap();
        let reached = Reached::of(
            &parts(
                "127.0.0.1",
                &[(
                    "forwarded",
                    "for=1.2.3.4;proto=https;host=\"scope.lab:8443\", for=5.6.7.8",
                )],
            ),
            &proxies,
        );
        assert_eq!(reached.origin().as_deref(), Some("https://scope.lab:8443"));
        let bad = Reached::of(
            &parts(
                "127.0.0.1",
                &[
                    ("host", "127.0.0.1"),
                    ("x-forwarded-host", "evil.example/path"),
                    ("x-forwarded-prefix", "/../admin"),
                    ("x-forwarded-proto", "gopher"),
                ],
            ),
            &proxies,
        );
        assert_eq!(bad.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(bad.prefix, "");
        assert_eq!(bad.scheme, "http");
        assert!(Proxies::parse(&["lab.example".into()]).is_err());
    }
}
