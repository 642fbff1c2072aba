//! The one error type of the client side.

use std::time::Duration;

use axum::http::StatusCode;

use crate::Problem;

/// What went wrong talking to a server.
///
/// When the server answered with an error, [`ClientError::Problem`] carries its RFC 9457
/// problem details (or what could be made of a body that was not one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL cannot be used.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The request failed before an answer arrived: no connection, reset, bad HTTP.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {}", problem.detail)]
    Problem {
        /// The URL requested.
        url: String,
        /// The status.
        status: StatusCode,
        /// The server's problem details; for a body that was not problem JSON, one made from the
        /// status and the body's text.
        problem: Box<Problem>,
    },
    /// No answer, or no progress, within a time limit.
    #[error("{what} took longer than {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// An answer that is not what the protocol promises: not a multipart stream, not JSON, not
    /// the expected shape.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The server closed a stream.
    #[error("{url} closed the stream")]
    Disconnected {
        /// The stream's URL.
        url: String,
    },
    /// The Thing Description has no affordance of that name.
    #[error("the Thing has no {kind} `{name}`; it has: {available}")]
    NoSuchAffordance {
        /// `property`, `action` or `stream`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names it has, comma-separated.
        available: String,
    },
    /// A value could not be converted to or from JSON as the caller's type.
    #[error("{what}: {source}")]
    Json {
        /// Which value.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// An action invocation ended as `error` or `cancelled`.
    #[error("action `{action}` ended as `{status}`{}", problem.as_ref().map(|p| format!(": {}", p.detail)).unwrap_or_default())]
    ActionFailed {
        /// The action's name.
        action: String,
        /// `error` or `cancelled`.
        status: String,
        /// The invocation's `error` member, if the server gave one.
        problem: Option<Box<Problem>>,
        /// The whole invocation as the server reported it.
        invocation: Box<serde_json::Value>,
    },
    /// The websocket failed or was closed.
    #[error("websocket {url}: {reason}")]
    WebSocket {
        /// The websocket URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// Events (or property changes) were lost before this client read them: it fell further
    /// behind than the Thing's history, or the server restarted. The subscription goes on.
    #[error("{url}: {} lost before they could be read", missed.map_or_else(|| "events may have been".to_owned(), |n| format!("{n} events were")))]
    EventsLost {
        /// The subscription's URL.
        url: String,
        /// How many, when the server knows.
        missed: Option<u64>,
    },
    /// The server refused an observation or sent an error over the websocket.
    #[error("websocket {url}: the server answered {}: {}", problem.status, problem.detail)]
    Observation {
        /// The websocket URL.
        url: String,
        /// The error the server sent.
        problem: Box<Problem>,
    },
}

impl ClientError {
    /// The HTTP status of a [`ClientError::Problem`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's problem details, for errors the server explained.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem { problem, .. } | Self::Observation { problem, .. } => Some(problem),
            Self::ActionFailed { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn http(url: &impl ToString, source: reqwest::Error) -> Self {
        Self::Http {
            url: url.to_string(),
            source,
        }
    }

    pub(crate) fn protocol(url: &impl ToString, reason: impl Into<String>) -> Self {
        Self::Protocol {
            url: url.to_string(),
            reason: reason.into(),
        }
    }

    /// Reads an error answer into [`ClientError::Problem`].
    pub(crate) async fn from_response(response: reqwest::Response) -> Self {
        let url = response.url().to_string();
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let mut problem = serde_json::from_slice::<Problem>(&body).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            let problem = Problem::new(status);
            if text.is_empty() {
                problem
            } else {
                problem.with_detail(text.chars().take(500).collect::<String>())
            }
        });
        // Servers that send `{"detail": ...}` alone (FastAPI does) leave the rest to us.
        if problem.status == 0 {
            problem.status = status.as_u16();
        }
        if problem.title.is_empty() {
            problem.title = status.canonical_reason().unwrap_or("Error").to_owned();
        }
        Self::Problem {
            url,
            status,
            problem: Box::new(problem),
        }
    }
}
