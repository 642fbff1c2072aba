//! [`Invocation`]: an action invocation on a server, seen from the client; and
//! [`ActionStatus`], a status change observed over the websocket.

use std::time::{Duration, Instant};

use axum::http::Method;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ClientError;
use super::http::{Http, expect_success, read_json, ws_problem};

/// A status change of an action invocation, from [`ThingClient::observe_action`](super::ThingClient::observe_action).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionStatus {
    /// The action's name.
    pub action: String,
    /// `pending`, `running`, `completed`, `error` or `cancelled`.
    pub status: String,
    /// The invocation's id, when the server sends it (ours does).
    pub id: Option<String>,
    /// The invocation's URL, when the server sends it (ours does).
    pub href: Option<String>,
}

/// An action invocation on the server; from [`ThingClient::start`](super::ThingClient::start).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub(super) http: Http,
    pub(super) action: String,
    pub(super) href: Url,
    pub(super) info: Value,
}

impl Invocation {
    /// The invocation's id.
    pub fn id(&self) -> &str {
        self.info["id"].as_str().unwrap_or_default()
    }

    /// The invocation's URL.
    pub fn href(&self) -> &str {
        self.href.as_str()
    }

    /// The status last seen: `pending`, `running`, `completed`, `error` or `cancelled`.
    pub fn status(&self) -> &str {
        self.info["status"].as_str().unwrap_or_default()
    }

    /// The invocation as last seen (the server's JSON).
    pub fn info(&self) -> &Value {
        &self.info
    }

    /// Whether the status last seen is final.
    pub fn is_finished(&self) -> bool {
        matches!(self.status(), "completed" | "error" | "cancelled")
    }

    /// Fetches the invocation's current state.
    pub async fn refresh(&mut self) -> Result<&Value, ClientError> {
        let request = self.http.request(Method::GET, self.href.clone());
        let response = self.http.send(request).await?;
        self.info = read_json(response, "the invocation").await?;
        Ok(&self.info)
    }

    /// Waits up to `timeout` for the invocation to finish. `Ok` if it completed;
    /// [`ClientError::ActionFailed`] if it ended as `error` or `cancelled`;
    /// [`ClientError::Timeout`] if it is still running (it is not cancelled).
    pub async fn wait(&mut self, timeout: Duration) -> Result<&Value, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(10);
        while !self.is_finished() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    what: format!("action `{}`", self.action),
                    after: timeout,
                });
            }
            tokio::time::sleep(interval.min(left)).await;
            interval = (interval * 2).min(Duration::from_millis(250));
            self.refresh().await?;
        }
        if self.status() == "completed" {
            return Ok(&self.info);
        }
        let problem = self.info["error"].is_object().then(|| {
            Box::new(
                serde_json::from_value(self.info["error"].clone())
                    .unwrap_or_else(|_| ws_problem(&self.info["error"])),
            )
        });
        Err(ClientError::ActionFailed {
            action: self.action.clone(),
            status: self.status().to_owned(),
            problem,
            invocation: Box::new(self.info.clone()),
        })
    }

    /// The output of a completed invocation as `O` (`()` for none). Blob outputs are
    /// `{"href", "media_type"}` objects: fetch them with [`ThingClient::blob`](super::ThingClient::blob).
    pub fn output<O: DeserializeOwned>(&self) -> Result<O, ClientError> {
        if self.status() != "completed" {
            return Err(ClientError::protocol(
                &self.href,
                format!("the invocation is `{}`, not completed", self.status()),
            ));
        }
        let output = self.info.get("output").cloned().unwrap_or(Value::Null);
        serde_json::from_value(output).map_err(|source| ClientError::Json {
            what: format!("the output of `{}`", self.action),
            source,
        })
    }

    /// Asks the server to cancel the invocation. Cancellation is cooperative: use
    /// [`wait`](Self::wait) to see it end.
    pub async fn cancel(&self) -> Result<(), ClientError> {
        let request = self.http.request(Method::DELETE, self.href.clone());
        let response = self.http.send(request).await?;
        expect_success(response).await.map(drop)
    }
}
