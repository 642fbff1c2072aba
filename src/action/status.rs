//! [`InvocationStatus`]: where an invocation is in its life. Its own file because the
//! invocation body (`body.rs`) and the invocations (`invocation/`) both name it.

use serde::Serialize;

/// Where an invocation is in its life. On the wire it is its name, [`as_str`](Self::as_str);
/// its JSON Schema is an `enum` of those names (what code generators turn into an enum type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationStatus {
    /// Accepted, not started (waiting for the action's lock, if it has one).
    Pending,
    /// Running.
    Running,
    /// Finished with an output.
    Completed,
    /// Stopped at a client's request.
    Cancelled,
    /// Failed (an error or a panic in the action).
    Error,
}

impl InvocationStatus {
    /// Every status, in the order of an invocation's life.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Cancelled,
        Self::Error,
    ];

    /// Whether the invocation has finished.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Error)
    }

    /// The name on the wire: `pending`, `running`, `completed`, `cancelled` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }
}

impl Serialize for InvocationStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl schemars::JsonSchema for InvocationStatus {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InvocationStatus".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|status| status.as_str()).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "Where an invocation is in its life: `pending` (waiting to start), \
                `running`, then `completed`, `cancelled` or `error`.",
            "enum": names,
        })
    }
}

impl std::fmt::Display for InvocationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
