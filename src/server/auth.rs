//! Access control with bearer tokens: off by default, real when on.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use serde_json::json;

use crate::Problem;
use crate::layout;
use crate::openapi::{self, RouteDoc};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Role {
    /// Reads: Thing Descriptions, property values, invocations, streams, websocket
    /// observation, metrics.
    ReadOnly,
    /// Reads, and writes: property writes, action invocations and cancellations.
    ReadWrite,
}

/// Access control for a [`ThingServer`](crate::ThingServer): bearer tokens, each read-only or
/// read-write.
///
/// With an `Auth` set ([`ThingServerBuilder::auth`](crate::server::ThingServerBuilder::auth), or
/// `auth` in the configuration file):
///
/// - every write (`PUT`, `POST`, `DELETE`: property writes, actions, cancels) needs a
///   read-write token;
/// - every read (`GET`, `HEAD`, websockets, streams) needs a token of either role, unless
///   [`public_read`](Self::public_read) is set;
/// - the API browser (`/docs/`), the OpenAPI document and the web UI's static files stay
///   public, so a user can find out how to authenticate and enter a token there.
///
/// The token goes in `Authorization: Bearer <token>`, or where a client cannot set headers
/// (an `<img>` showing a stream, a browser websocket) in the `access_token` query parameter
/// (RFC 6750 §2.3), which the server removes before routing and never logs. A missing or
/// unknown token gets 401, a read-only token used to write gets 403, both as problem JSON with
/// a `WWW-Authenticate` header; refusals are logged without the token. Thing Descriptions
/// advertise the `bearer` security scheme and the OpenAPI document an HTTP bearer scheme.
/// Serve over HTTPS (a reverse proxy) on untrusted networks: a bearer token is a password.
///
/// # Examples
///
/// ```
/// use labthings::{ThingServer, server::{Auth, Role}};
///
/// let server = ThingServer::builder()
/// #   .without_settings_folder()
///     .auth(
///         Auth::new()
///             .token("s3cret-operator-token", Role::ReadWrite)
///             .token("viewer-token", Role::ReadOnly)
///             .public_read(false),
///     )
///     .build()
///     .unwrap();
/// ```
#[derive(Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "Access control with bearer tokens: every write needs a read-write token, every read a token of either role unless `public_read`."
)]
pub struct Auth {
    /// The bearer tokens, each with what it allows.
    tokens: Vec<TokenEntry>,
    /// Whether reads need no token.
    #[serde(default)]
    public_read: bool,
}

/// A bearer token and its role.
#[derive(Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    /// The token, as sent after `Bearer `.
    token: String,
    /// What it allows.
    role: Role,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("Auth")
            .field(
                "tokens",
                &self.tokens.iter().map(|t| t.role).collect::<Vec<_>>(),
            )
            .field("public_read", &self.public_read)
            .finish()
    }
}

impl Auth {
    /// Access control with no tokens yet: nothing is allowed until tokens are added (reads
    /// too, unless [`public_read`](Self::public_read)).
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `token` with `role`.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>, role: Role) -> Self {
        self.tokens.push(TokenEntry {
            token: token.into(),
            role,
        });
        self
    }

    /// Whether reads need no token (writes always need a read-write one). Default `false`.
    #[must_use]
    pub fn public_read(mut self, public: bool) -> Self {
        self.public_read = public;
        self
    }

    /// Checks the configuration: tokens must be non-empty, unique and valid in a header.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (index, entry) in self.tokens.iter().enumerate() {
            if entry.token.len() < 8 {
                return Err(format!(
                    "token {} is shorter than 8 characters: too easy to guess",
                    index + 1
                ));
            }
            if !entry.token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "token {} must be printable ASCII without spaces",
                    index + 1
                ));
            }
            if self.tokens[..index].iter().any(|e| e.token == entry.token) {
                return Err(format!("token {} is listed twice", index + 1));
            }
        }
        Ok(())
    }

    /// The role of `token`, compared in constant time against every configured token.
    fn role_of(&self, token: &str) -> Option<Role> {
        let mut found = None;
        for entry in &self.tokens {
            if constant_time_eq(entry.token.as_bytes(), token.as_bytes()) {
                found = Some(entry.role);
            }
        }
        found
    }

    /// Whether reads are public.
    pub(crate) fn reads_are_public(&self) -> bool {
        self.public_read
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The middleware's state: the configuration and the paths that stay public.
pub(crate) struct Guard {
    pub(crate) auth: Auth,
    pub(crate) prefix: String,
}

impl Guard {
    fn is_public_path(&self, path: &str) -> bool {
        path.strip_prefix(&self.prefix)
            .is_some_and(layout::is_always_public)
    }
}

/// Whether a request with this method writes (and so needs a read-write token).
fn is_write(method: &Method) -> bool {
    // CONNECT is routed only for websockets over HTTP/2, which read as a GET upgrade does.
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::CONNECT
    )
}

/// Documents access control on each operation: public reads say so (`security: []`), every
/// other operation can answer 401, and writes also 403 (a read-only token).
pub(crate) fn document(routes: &mut [RouteDoc], public_read: bool) {
    for route in routes {
        let writes = is_write(&route.method);
        if !writes && (public_read || layout::is_always_public(&route.path)) {
            route.operation["security"] = json!([]);
            continue;
        }
        let responses = &mut route.operation["responses"];
        responses["401"] = openapi::problem("No bearer token, or one this server does not know");
        if writes {
            responses["403"] = openapi::problem("A read-only token: this needs a read-write one");
        }
    }
}

/// Checks the request's token against what its method needs.
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = take_query_token(&mut request).or_else(|| {
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            })
    });
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let writes = is_write(&method);
    if !writes && (guard.auth.public_read || guard.is_public_path(&path)) {
        return next.run(request).await;
    }
    let needed = if writes {
        Role::ReadWrite
    } else {
        Role::ReadOnly
    };
    let refusal = match token.as_deref().map(|token| guard.auth.role_of(token)) {
        None => Some((
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"labthings\"",
            "This server needs a bearer token: send `Authorization: Bearer <token>` (or the \
             `access_token` query parameter where headers cannot be set).",
            "no token",
        )),
        Some(None) => Some((
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"labthings\", error=\"invalid_token\"",
            "The bearer token is not valid on this server.",
            "unknown token",
        )),
        Some(Some(role)) if role < needed => Some((
            StatusCode::FORBIDDEN,
            "Bearer realm=\"labthings\", error=\"insufficient_scope\"",
            "This token is read-only; writing properties, invoking and cancelling actions need \
             a read-write token.",
            "read-only token used to write",
        )),
        Some(Some(_)) => None,
    };
    match refusal {
        None => next.run(request).await,
        Some((status, challenge, detail, reason)) => {
            tracing::warn!(target: "labthings::auth", %method, %path, reason, "request refused");
            let mut response = Problem::new(status)
                .with_detail(detail)
                .with_invalid_param("Authorization", reason)
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            response
        }
    }
}

/// Removes `access_token` from the query string and returns it.
fn take_query_token(request: &mut Request) -> Option<String> {
    let query = request.uri().query()?;
    let mut token = None;
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "access_token" {
            token = Some(value.into_owned());
        } else {
            kept.append_pair(&name, &value);
        }
    }
    token.as_ref()?;
    let kept = kept.finish();
    let path = request.uri().path();
    let path_and_query = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{kept}")
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_validation() {
        let auth = Auth::new()
            .token("writer-token", Role::ReadWrite)
            .token("reader-token", Role::ReadOnly);
        assert!(auth.validate().is_ok());
        assert_eq!(auth.role_of("writer-token"), Some(Role::ReadWrite));
        assert_eq!(auth.role_of("reader-token"), Some(Role::ReadOnly));
        assert_eq!(auth.role_of("reader-toke"), None);
        assert!(Role::ReadOnly < Role::ReadWrite);
        assert!(
            Auth::new()
                .token("short", Role::ReadOnly)
                .validate()
                .is_err()
        );
        assert!(
            Auth::new()
                .token("has a space", Role::ReadOnly)
                .validate()
                .is_err()
        );
        let twice = Auth::new()
            .token("same-token", Role::ReadOnly)
            .token("same-token", Role::ReadWrite);
        assert!(twice.validate().unwrap_err().contains("twice"));
        assert!(!format!("{auth:?}").contains("writer-token"));
    }
}
