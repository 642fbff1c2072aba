//! The HTTP side every client part shares: one `reqwest` client with the Thing's headers and
//! request timeout, and reading answers (a success, JSON, a problem). Its own file because
//! both `ThingClient` (`thing.rs`) and `Invocation` (`invocation.rs`) speak through it.

use axum::http::{HeaderMap, Method};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

use super::ClientError;
use crate::Problem;

/// A `reqwest` client with the headers and the timeout of one Thing's requests.
#[derive(Debug, Clone)]
pub(super) struct Http {
    pub(super) client: reqwest::Client,
    /// Sent with every request (authorisation, and any the builder added).
    pub(super) headers: HeaderMap,
    /// The time limit of one request.
    pub(super) request_timeout: Duration,
    /// The Thing's URL, named in errors that have no request URL.
    pub(super) url: Url,
}

impl Http {
    /// A request with the headers and no time limit (for streams that stay open).
    pub(super) fn request_unbounded(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .headers(self.headers.clone())
    }

    /// A request with the headers and the time limit.
    pub(super) fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.request_unbounded(method, url)
            .timeout(self.request_timeout)
    }

    /// Sends a request; a timeout says what timed out, and after how long.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|error| ClientError::http(&self.url, error))?;
        let url = request.url().clone();
        client.execute(request).await.map_err(|error| {
            if error.is_timeout() {
                ClientError::Timeout {
                    what: format!("the request to {url}"),
                    after: self.request_timeout,
                }
            } else {
                ClientError::http(&url, error)
            }
        })
    }
}

/// A websocket error member (`status` may be a string) as a problem.
pub(super) fn ws_problem(error: &Value) -> Problem {
    let status = match &error["status"] {
        Value::String(text) => text.parse().unwrap_or(500),
        Value::Number(number) => number.as_u64().unwrap_or(500) as u16,
        _ => 500,
    };
    let status = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut problem = Problem::new(status);
    if let Some(detail) = error["detail"].as_str() {
        problem = problem.with_detail(detail);
    }
    if let Some(title) = error["title"].as_str() {
        problem.title = title.to_owned();
    }
    if let Some(kind) = error["type"].as_str() {
        problem.type_uri = kind.to_owned();
    }
    problem
}

pub(super) async fn expect_success(
    response: reqwest::Response,
) -> Result<reqwest::Response, ClientError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(ClientError::from_response(response).await)
    }
}

pub(super) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, ClientError> {
    let response = expect_success(response).await?;
    let url = response.url().clone();
    let body = response
        .bytes()
        .await
        .map_err(|error| ClientError::http(&url, error))?;
    serde_json::from_slice(&body).map_err(|source| ClientError::Json {
        what: format!("{what} from {url}"),
        source,
    })
}
