//! The W3C Web of Things Thing Description (TD 1.1) of a Thing.
//!
//! Types follow [W3C WoT TD 1.1](https://www.w3.org/TR/wot-thing-description11/) and are
//! serialised with its camelCase names. A TD is built once per Thing from the same descriptors
//! as its routes (each affordance kind's module in the server adds its entries); only `base` is
//! filled in per request (from the configured public URL, or the
//! request's `Host`). Form `href`s are relative to `base`, so a server behind a reverse proxy at
//! a sub-path stays reachable.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::thing::ThingDescriptor;

/// The TD 1.1 context URI.
pub const TD_CONTEXT: &str = "https://www.w3.org/2022/wot/td/v1.1";

/// The TD 1.0 context URI.
pub const TD_1_0_CONTEXT: &str = "https://www.w3.org/2019/wot/td/v1";

/// The media type of a Thing Description.
pub const TD_MEDIA_TYPE: &str = "application/td+json";

/// A Thing Description ([TD 1.1 §5.3.1.1](https://www.w3.org/TR/wot-thing-description11/#thing)).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ThingDescription {
    /// `@context`: the TD 1.0 and TD 1.1 contexts, in the two-entry form TD 1.1 allows
    /// ([§5.3.1.1](https://www.w3.org/TR/wot-thing-description11/#thing)); consumers that
    /// validate against TD 1.0 (node-wot 0.9.2's `requestThingDescription`) accept it, where they
    /// refuse the TD 1.1 URI alone.
    #[serde(rename = "@context")]
    pub context: [&'static str; 2],
    /// The Thing's identifier, a URI (`urn:uuid:...`): the same after a restart, and the key a
    /// Thing Description Directory lists it under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A human-readable name.
    pub title: String,
    /// What the Thing is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The URL that relative `href`s resolve against.
    pub base: String,
    /// The security schemes, by name.
    pub security_definitions: Map<String, Value>,
    /// The scheme in force.
    pub security: String,
    /// Property affordances, by name, in declaration order.
    pub properties: Map<String, Value>,
    /// Action affordances, by name, in declaration order.
    pub actions: Map<String, Value>,
    /// Event affordances, by name, in declaration order.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub events: Map<String, Value>,
    /// Forms of the whole Thing (`observeallproperties`, `subscribeallevents`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forms: Vec<Value>,
    /// Links: the live streams and their snapshots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// A TD link ([TD 1.1 §5.3.4.1](https://www.w3.org/TR/wot-thing-description11/#link)).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Link {
    /// Where it points, relative to `base`.
    pub href: String,
    /// The media type of what it points to.
    #[serde(rename = "type")]
    pub media_type: String,
    /// The relation: `alternate` for a live stream, `preview` for its snapshot, `history`
    /// for a property's history.
    pub rel: String,
    /// What the link is about, when not the Thing itself: the property whose history it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
}

impl ThingDescription {
    /// Advertises the `bearer` security scheme (access control is on) instead of `nosec`.
    pub(crate) fn use_bearer_security(&mut self, public_read: bool) {
        let description = if public_read {
            "A bearer token with the read-write role, in the Authorization header, for writes \
             and actions; reads are public"
        } else {
            "A bearer token in the Authorization header: read-only or read-write (writes and \
             actions need read-write)"
        };
        self.security_definitions = Map::new();
        self.security_definitions.insert(
            "bearer_sc".to_owned(),
            serde_json::json!({
                "scheme": "bearer",
                "in": "header",
                "name": "Authorization",
                "description": description,
            }),
        );
        self.security = "bearer_sc".to_owned();
    }

    /// The TD of a Thing with its title and description and no affordances yet, and `base`
    /// still to fill in; the server's affordance modules add the affordances.
    pub(crate) fn new<T>(descriptor: &ThingDescriptor<T>) -> Self {
        let mut security_definitions = Map::new();
        security_definitions.insert(
            "no_security".to_owned(),
            serde_json::json!({"scheme": "nosec", "description": "No security"}),
        );
        Self {
            context: [TD_1_0_CONTEXT, TD_CONTEXT],
            id: None,
            title: descriptor.title.clone(),
            description: descriptor.description.clone(),
            base: String::new(),
            security_definitions,
            security: "no_security".to_owned(),
            properties: Map::new(),
            actions: Map::new(),
            events: Map::new(),
            forms: Vec::new(),
            links: Vec::new(),
        }
    }

    /// This TD with its `base` set, and its WebSocket forms made absolute (`ws://` or
    /// `wss://`, since relative `href`s would resolve to `http://`).
    pub fn with_base(&self, base: String) -> Self {
        let ws_base = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| base.clone());
        let mut properties = self.properties.clone();
        for affordance in properties.values_mut() {
            if let Some(forms) = affordance.get_mut("forms").and_then(Value::as_array_mut) {
                for form in forms.iter_mut().filter(|form| {
                    form["href"]
                        .as_str()
                        .is_some_and(crate::layout::is_websocket_link)
                }) {
                    if let Some(href) = form["href"].as_str() {
                        form["href"] = format!("{ws_base}{href}").into();
                    }
                }
            }
        }
        Self {
            base,
            properties,
            ..self.clone()
        }
    }

    /// This TD with `base` set and every link made absolute: what a directory keeps, for
    /// consumers that read links without resolving them against `base`.
    #[cfg(feature = "directory")]
    pub(crate) fn absolute(&self, base: String) -> Self {
        let mut td = self.with_base(base);
        let absolute = |href: &str| {
            if href.contains("://") {
                href.to_owned()
            } else {
                format!("{}{href}", td.base)
            }
        };
        let mut forms_of = |affordance: &mut Value| {
            if let Some(forms) = affordance.get_mut("forms").and_then(Value::as_array_mut) {
                for form in forms {
                    if let Some(href) = form["href"].as_str() {
                        form["href"] = absolute(href).into();
                    }
                }
            }
        };
        let mut properties = std::mem::take(&mut td.properties);
        let mut actions = std::mem::take(&mut td.actions);
        let mut events = std::mem::take(&mut td.events);
        properties
            .values_mut()
            .chain(actions.values_mut())
            .chain(events.values_mut())
            .for_each(&mut forms_of);
        let mut forms = std::mem::take(&mut td.forms);
        for form in &mut forms {
            if let Some(href) = form["href"].as_str() {
                form["href"] = absolute(href).into();
            }
        }
        let links = td
            .links
            .iter()
            .map(|link| Link {
                href: absolute(&link.href),
                anchor: link.anchor.as_deref().map(absolute),
                ..link.clone()
            })
            .collect();
        Self {
            properties,
            actions,
            events,
            forms,
            links,
            ..td
        }
    }
}
