//! HTTP errors as RFC 9457 problem details.
//!
//! Every error the server sends, whatever route produced it, has one body format:
//! [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) `application/problem+json`. The
//! [`Problem`] type builds such a body and renders itself as an axum response.
//!
//! Python LabThings clients read the `detail` member of an error body, so every problem we send
//! carries one.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// HTTP status codes (the `http` crate's, as axum re-exports it), for [`Problem::new`] without
/// a dependency of your own.
pub use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The media type of an RFC 9457 problem details body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object, rendered as `application/problem+json`.
///
/// Build one with [`Problem::new`] and the `with_*` methods; return it from a handler (it
/// implements [`IntoResponse`]). Client mistakes should name the offending field with
/// [`Problem::with_invalid_param`], which adds the `invalid-params` extension member described
/// in RFC 9457 §3.
///
/// # Examples
///
/// ```
/// use labthings::problem::StatusCode;
/// use labthings::Problem;
///
/// let problem = Problem::new(StatusCode::BAD_REQUEST)
///     .with_detail("Query parameter `fps` must be a positive number, got `-3`.")
///     .with_invalid_param("fps", "must be a positive number");
/// let json = serde_json::to_value(&problem).unwrap();
/// assert_eq!(json["status"], 400);
/// assert_eq!(json["title"], "Bad Request");
/// assert_eq!(json["invalid-params"][0]["name"], "fps");
/// ```
///
/// It also deserializes, leniently (missing members take their defaults), so clients can read
/// the problems a server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "server",
    schemars(
        description = "RFC 9457 problem details.",
        transform = members_are_always_sent
    )
)]
pub struct Problem {
    /// A URI identifying the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type", default = "about_blank")]
    pub type_uri: String,
    /// A short, human-readable summary of the problem type.
    #[serde(default)]
    pub title: String,
    /// The HTTP status code.
    #[serde(default)]
    pub status: u16,
    /// A human-readable explanation specific to this occurrence of the problem.
    #[serde(default)]
    pub detail: String,
    /// A URI reference that identifies this occurrence of the problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "server", schemars(with = "String"))]
    pub instance: Option<String>,
    /// The request parameters that were wrong, each with the reason (RFC 9457 §3 example
    /// extension `invalid-params`).
    #[serde(
        rename = "invalid-params",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub invalid_params: Vec<InvalidParam>,
    #[serde(skip)]
    headers: HeaderMap,
}

/// One entry of the `invalid-params` extension member: which parameter was wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct InvalidParam {
    /// The name of the parameter (query parameter, property or argument).
    pub name: String,
    /// Why its value was rejected.
    pub reason: String,
}

/// The schema describes what a server sends, where every member but `instance` and
/// `invalid-params` is always present: the defaults (there for lenient reading) are not part of
/// it.
#[cfg(feature = "server")]
fn members_are_always_sent(schema: &mut schemars::Schema) {
    if let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for member in properties.values_mut() {
            if let Some(member) = member.as_object_mut() {
                member.remove("default");
            }
        }
    }
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl Problem {
    /// A problem with the given status, `type` `about:blank`, the status's canonical reason as
    /// its title, and that title as its detail until [`with_detail`](Self::with_detail) sets one.
    pub fn new(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        Self {
            type_uri: "about:blank".to_owned(),
            detail: title.clone(),
            title,
            status: status.as_u16(),
            instance: None,
            invalid_params: Vec::new(),
            headers: HeaderMap::new(),
        }
    }

    /// Sets the human-readable explanation of this occurrence.
    ///
    /// A detail longer than 2,048 characters is cut short (saying how much was left out): a
    /// detail often quotes the value a client sent, and a problem never echoes megabytes back.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = shortened(detail.into(), MAX_DETAIL);
        self
    }

    /// Sets the title (a short summary of the problem type).
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the problem type URI.
    pub fn with_type(mut self, type_uri: impl Into<String>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Names a parameter that was wrong, with the reason, in the `invalid-params` member.
    pub fn with_invalid_param(
        mut self,
        name: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        self.invalid_params.push(InvalidParam {
            name: shortened(name.into(), MAX_REASON),
            reason: shortened(reason.into(), MAX_REASON),
        });
        self
    }

    /// Adds a response header, such as `Allow` on a 405 or `Retry-After` on a 503.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The HTTP status of this problem.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl Problem {
    /// The whole HTTP/1.1 response, bytes ready for a socket, ending the connection: for
    /// answers given below the router (a connection over the limit, a request head too slow).
    pub(crate) fn to_http1_close(&self) -> Vec<u8> {
        let body = serde_json::to_string(self).unwrap_or_default();
        let status = self.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\nconnection: close\r\n\
             content-length: {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
        for (name, value) in &self.headers {
            if let Ok(value) = value.to_str() {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }
}

/// `Title: detail`, as a log line or an error message reads it.
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.title.is_empty(), self.detail.is_empty()) {
            (false, false) => write!(f, "{}: {}", self.title, self.detail),
            (false, true) => f.write_str(&self.title),
            (true, _) => f.write_str(&self.detail),
        }
    }
}

/// A problem is an error: an action may return it (its status is kept: `422` says the input
/// was wrong), and `?` turns it into a boxed error.
impl std::error::Error for Problem {}

impl IntoResponse for Box<Problem> {
    fn into_response(self) -> Response {
        (*self).into_response()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match serde_json::to_vec(&self) {
            Ok(body) => body,
            Err(error) => {
                // Serialising strings and integers cannot fail; if it ever does, say so plainly.
                tracing::error!(%error, "could not serialise a problem details body");
                br#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"Internal Server Error"}"#.to_vec()
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.extend(self.headers);
        response
    }
}

/// The longest `detail` a problem carries, in characters.
const MAX_DETAIL: usize = 2048;
/// The longest name or reason of an invalid parameter, in characters.
const MAX_REASON: usize = 512;

/// `text` cut to `max` characters, saying how many were left out.
fn shortened(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((cut, _)) => {
            let left_out = text[cut..].chars().count();
            format!("{}… ({left_out} more characters)", &text[..cut])
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_details_and_reasons_are_cut_short() {
        let long = "é".repeat(5000);
        let problem = super::Problem::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
            .with_detail(long.clone())
            .with_invalid_param("x", long);
        assert!(
            problem.detail.ends_with("… (2952 more characters)"),
            "{}",
            &problem.detail[4000..]
        );
        assert_eq!(
            problem.detail.chars().count(),
            2048 + "… (2952 more characters)".chars().count()
        );
        assert!(
            problem.invalid_params[0]
                .reason
                .ends_with("(4488 more characters)")
        );
        let short = super::Problem::new(axum::http::StatusCode::BAD_REQUEST).with_detail("fine");
        assert_eq!(short.detail, "fine");
    }

    use super::*;

    #[test]
    fn a_raw_http1_answer_has_the_status_line_headers_length_and_body() {
        let problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_detail("full")
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
        let bytes = problem.to_http1_close();
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        assert!(head.contains("connection: close"), "{head}");
        assert!(head.contains("retry-after: 1"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 503);
        assert_eq!(json["detail"], "full");
    }

    #[test]
    fn detail_defaults_to_title_so_python_clients_always_find_it() {
        let json = serde_json::to_value(Problem::new(StatusCode::NOT_FOUND)).unwrap();
        assert_eq!(json["detail"], "Not Found");
        assert_eq!(json["type"], "about:blank");
        assert!(json.get("invalid-params").is_none());
    }

    #[test]
    fn response_has_problem_media_type_status_and_extra_headers() {
        let response = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
