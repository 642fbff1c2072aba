//! The messages of a Thing's observation websocket (`WS /<thing>/ws`, the labthings-fastapi
//! protocol), one Rust type each way: [`ClientMessage`] in, [`ServerMessage`] out. The server
//! (`server/ws.rs`) and the client (`client/observe.rs`) both speak through these types, and
//! the OpenAPI document describes the websocket with their schemas, so the three cannot
//! disagree.

// The server reads what the client writes and the other way round: with one side's feature
// alone, the other half is unused.
#![cfg_attr(not(all(feature = "server", feature = "client")), allow(dead_code))]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The names a subscription message lists: `{"exposure": true, "gain": true}`. The values are
/// not read (labthings-fastapi sends `true`).
pub(crate) type Names = Map<String, Value>;

/// What a client sends: start or stop observing some properties, actions or events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(tag = "messageType", rename_all = "camelCase", deny_unknown_fields)]
// The variants are named as the protocol names its messages.
#[allow(clippy::enum_variant_names)]
pub(crate) enum ClientMessage {
    /// Send these properties' values now and on every change.
    AddPropertyObservation {
        /// The properties, as keys.
        data: Names,
    },
    /// Stop sending these properties' values.
    RemovePropertyObservation {
        /// The properties, as keys.
        data: Names,
    },
    /// Send the status of every invocation of these actions as it changes.
    AddActionObservation {
        /// The actions, as keys.
        data: Names,
    },
    /// Stop sending these actions' invocations.
    RemoveActionObservation {
        /// The actions, as keys.
        data: Names,
    },
    /// Send each emission of these events.
    AddEventObservation {
        /// The events, as keys.
        data: Names,
    },
    /// Stop sending these events.
    RemoveEventObservation {
        /// The events, as keys.
        data: Names,
    },
}

/// The `messageType`s a client may send, for the message that names them.
pub(crate) const CLIENT_MESSAGE_TYPES: [&str; 6] = [
    "addPropertyObservation",
    "removePropertyObservation",
    "addActionObservation",
    "removeActionObservation",
    "addEventObservation",
    "removeEventObservation",
];

/// The kind of affordance a [`ClientMessage`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Properties.
    Property,
    /// Actions.
    Action,
    /// Events.
    Event,
}

impl ClientMessage {
    /// One name to observe, of `kind`.
    pub(crate) fn add(kind: Observed, name: &str) -> Self {
        let mut data = Names::new();
        data.insert(name.to_owned(), Value::Bool(true));
        match kind {
            Observed::Property => Self::AddPropertyObservation { data },
            Observed::Action => Self::AddActionObservation { data },
            Observed::Event => Self::AddEventObservation { data },
        }
    }

    /// What the message is about, whether it starts observation (or stops it), and the names.
    pub(crate) fn into_parts(self) -> (Observed, bool, Names) {
        match self {
            Self::AddPropertyObservation { data } => (Observed::Property, true, data),
            Self::RemovePropertyObservation { data } => (Observed::Property, false, data),
            Self::AddActionObservation { data } => (Observed::Action, true, data),
            Self::RemoveActionObservation { data } => (Observed::Action, false, data),
            Self::AddEventObservation { data } => (Observed::Event, true, data),
            Self::RemoveEventObservation { data } => (Observed::Event, false, data),
        }
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(tag = "messageType", rename_all = "camelCase")]
pub(crate) enum ServerMessage {
    /// A property's value: `{"exposure": 42.0}`.
    PropertyStatus {
        /// The property, as the one key, and its value.
        data: Map<String, Value>,
    },
    /// An invocation of an observed action changed status.
    ActionStatus {
        /// Which invocation, and its status.
        data: ActionStatusData,
    },
    /// An observed event was emitted: `{"moved": [100, 0, 0]}`, with when.
    Event {
        /// The event, as the one key, and its data.
        data: Map<String, Value>,
        /// When the server recorded it (RFC 3339, UTC); absent from servers that do not say.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The client fell so far behind that events left the Thing's history before it read
    /// them.
    EventsLost {
        /// How many.
        data: EventsLost,
    },
    /// A request could not be carried out.
    Response {
        /// The operation that failed (`observeproperty`, `observeaction`, `subscribeevent`);
        /// absent for a message that could not be read at all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        /// The affordance it named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Why, as problem details (W3C Web Thing Protocol errors).
        error: ErrorData,
    },
}

/// The `data` of an `actionStatus` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub(crate) struct ActionStatusData {
    /// The action (labthings-fastapi's key, with its space).
    #[serde(rename = "action name")]
    pub(crate) action: String,
    /// `pending`, `running`, `completed`, `cancelled` or `error`.
    pub(crate) status: String,
    /// The invocation's id.
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// The invocation's URL.
    #[serde(default)]
    pub(crate) href: Option<String>,
}

/// The `data` of an `eventsLost` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub(crate) struct EventsLost {
    /// How many events the client missed.
    pub(crate) missed: u64,
}

/// The `error` of a `response` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub(crate) struct ErrorData {
    /// The HTTP status it corresponds to, as a string (`"404"`; a number is read too).
    #[serde(deserialize_with = "status_text")]
    pub(crate) status: String,
    /// A URI naming the kind of error.
    #[serde(rename = "type")]
    pub(crate) type_uri: String,
    /// A short summary of the kind.
    pub(crate) title: String,
    /// What went wrong, for a person.
    pub(crate) detail: String,
}

/// A status as a string, from a string or a number.
fn status_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        other => other.to_string(),
    })
}

impl ServerMessage {
    /// The message as websocket text.
    #[cfg(feature = "server")]
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a websocket message is JSON")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn messages_have_the_labthings_fastapi_shapes() {
        let message: ClientMessage = serde_json::from_value(
            json!({"messageType": "addPropertyObservation", "data": {"x": true}}),
        )
        .unwrap();
        assert_eq!(message, ClientMessage::add(Observed::Property, "x"));
        let status = ServerMessage::ActionStatus {
            data: ActionStatusData {
                action: "capture".into(),
                status: "running".into(),
                id: Some("1".into()),
                href: Some("http://h/action_invocations/1".into()),
            },
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"messageType": "actionStatus", "data": {"action name": "capture",
                "status": "running", "id": "1", "href": "http://h/action_invocations/1"}})
        );
        let bad = ServerMessage::Response {
            operation: None,
            name: None,
            error: ErrorData {
                status: "400".into(),
                type_uri: "t".into(),
                title: "Bad Request".into(),
                detail: "d".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&bad).unwrap(),
            json!({"messageType": "response", "error": {"status": "400", "type": "t",
                "title": "Bad Request", "detail": "d"}})
        );
        let round: ServerMessage = serde_json::from_str(&bad.to_text()).unwrap();
        assert_eq!(round, bad);
    }

    #[test]
    fn every_client_message_type_is_listed() {
        for kind in CLIENT_MESSAGE_TYPES {
            let message = json!({"messageType": kind, "data": {}});
            assert!(
                serde_json::from_value::<ClientMessage>(message).is_ok(),
                "{kind}"
            );
        }
    }
}
