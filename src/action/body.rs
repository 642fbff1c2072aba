//! The JSON body of an invocation: one Rust type for the wire form (serde) and its schema
//! (schemars), so the OpenAPI document describes exactly what is sent.

use serde::Serialize;
use serde_json::Value;

use super::context::LogRecord;
use super::status::InvocationStatus;
use crate::problem::Problem;

/// One run of an action, as the invocation routes and `?wait=` answer it (the labthings-fastapi
/// shape, with `thing` and `progress` added).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Invocation", description = "One run of an action.")]
pub(crate) struct InvocationBody {
    /// Where the invocation is in its life.
    pub(crate) status: InvocationStatus,
    /// The invocation's id (a UUID).
    pub(crate) id: String,
    /// The action's path.
    pub(crate) action: String,
    /// The Thing's name.
    pub(crate) thing: String,
    /// This invocation's URL: poll it until `status` is final.
    pub(crate) href: String,
    /// When the request arrived (RFC 3339, UTC).
    #[schemars(extend("format" = "date-time"))]
    pub(crate) time_requested: String,
    /// When the action started, if it has.
    #[schemars(extend("format" = "date-time"))]
    pub(crate) time_started: Option<String>,
    /// When the action ended, if it has.
    #[schemars(extend("format" = "date-time"))]
    pub(crate) time_completed: Option<String>,
    /// `self` (this invocation) and `output` (its output).
    pub(crate) links: Vec<InvocationLink>,
    /// The arguments it was called with.
    pub(crate) input: Value,
    /// The output once completed: JSON, or a link to a blob.
    pub(crate) output: Value,
    /// Progress from 0 to 1, if the action reports it.
    pub(crate) progress: Option<f64>,
    /// What the action logged.
    pub(crate) log: Vec<LogRecord>,
    /// Why it ended as `error` or `cancelled`.
    pub(crate) error: Option<Problem>,
}

/// A link of an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub(crate) struct InvocationLink {
    /// Where it points.
    pub(crate) href: String,
    /// `self` or `output`.
    pub(crate) rel: &'static str,
}
