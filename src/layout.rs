//! The URL layout of a server, spelled once.
//!
//! Every path the server answers is built by a function here: the router registers it, the
//! Thing Description and the OpenAPI document link to it, invocation bodies and websocket
//! messages point at it, access control knows which paths stay public, and the names a Thing
//! or an affordance cannot take follow from it. Change a path here and every one of them
//! changes with it.
//!
//! Paths start with `/` and do not include the API prefix (the router nests them under it).
//! Links inside documents are relative to a `base` URL ending in `/`: [`relative`] turns a
//! path into such a link.
//!
//! | path | what |
//! |---|---|
//! | `/{thing}/` | the Thing Description |
//! | `/{thing}/{affordance}` | a property, an action or a stream |
//! | `/{thing}/{stream}/snapshot`, `/{thing}/{stream}/viewer` | a stream's newest frame and viewer page |
//! | `/{thing}/ws` | the Thing's observation websocket |
//! | `/{thing}/{property}/observe`, `/{thing}/observe` | one or every observable property, as Server-Sent Events |
//! | `/{thing}/events` | every event of the Thing, as Server-Sent Events (one event: `/{thing}/{event}`) |
//! | `/things/`, `/thing_descriptions/` | the index of Things |
//! | `/action_invocations`, `/action_invocations/{id}`, `.../output` | invocations |
//! | `/blob/{id}` | binary action outputs |
//! | `/openapi.json`, `/docs` | the OpenAPI document and its browser |
//! | `/metrics` | Prometheus metrics |
//! | `/static` | the web UI's files |
//! | `/lab_view/`, `/lab_view/sources`, `/lab_view/directory`, `/lab_view/directory/things` | the lab view, what it shows, and the directory it reads |

// Without the `server` feature only the stream routes use this module.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

/// The segment of a Thing's observation websocket, under the Thing.
const WEBSOCKET: &str = "ws";
/// The segment of a Thing's stream of every event (Server-Sent Events), under the Thing.
const EVENTS: &str = "events";
/// The segment of observation over Server-Sent Events: of every observable property, under
/// the Thing; of one property, under the property.
const OBSERVE: &str = "observe";

/// `/{thing}/stop_all`: the action every Thing with actions gets, which stops every unfinished
/// invocation of its other actions.
pub(crate) const STOP_ALL: &str = "stop_all";
/// The segment of the invocation routes.
const INVOCATIONS: &str = "action_invocations";
/// The segment of the blob routes.
const BLOB: &str = "blob";
/// The segment of the web UI's files.
const STATIC: &str = "static";
/// The segment of the API browser.
const DOCS: &str = "docs";
/// The OpenAPI document's file name.
const OPENAPI: &str = "openapi.json";
/// The segment of the metrics route.
const METRICS: &str = "metrics";
/// The segment of the Thing index.
const THINGS: &str = "things";
/// The segment of the Thing Description index.
const THING_DESCRIPTIONS: &str = "thing_descriptions";
/// The segment of the lab view (not `lab`, a common name for a Thing).
const LAB: &str = "lab_view";

/// Names a Thing cannot have: the first segments of the server's own routes.
pub(crate) const RESERVED_THING_NAMES: [&str; 9] = [
    THINGS,
    THING_DESCRIPTIONS,
    OPENAPI,
    DOCS,
    INVOCATIONS,
    BLOB,
    METRICS,
    STATIC,
    LAB,
];

/// Names an affordance cannot have: the routes the server adds under each Thing.
///
/// The macros refuse the same names at compile time (`macros/src/names.rs`, which cannot
/// import this crate); the test `the_macros_reserve_the_same_affordance_names` keeps the two
/// lists in step, and the server refuses them at build time too (for descriptors made by hand).
pub(crate) const RESERVED_AFFORDANCE_NAMES: [&str; 4] = [WEBSOCKET, EVENTS, OBSERVE, STOP_ALL];

/// `/{thing}/`: a Thing's Thing Description.
pub(crate) fn thing(thing: &str) -> String {
    format!("/{thing}/")
}

/// `/lab_view/`: the lab view's page.
pub(crate) fn lab() -> String {
    format!("/{LAB}/")
}

/// `/lab_view/sources`: what the lab view shows (servers, the directory).
pub(crate) fn lab_sources() -> String {
    format!("/{LAB}/sources")
}

#[cfg_attr(not(feature = "directory"), allow(dead_code))]
/// `/lab_view/directory`: a Thing Description of the directory the server registers with.
pub(crate) fn lab_directory() -> String {
    format!("/{LAB}/directory")
}

#[cfg_attr(not(feature = "directory"), allow(dead_code))]
/// `/lab_view/directory/things`: the directory's Thing Descriptions, read by the server.
pub(crate) fn lab_directory_things() -> String {
    format!("/{LAB}/directory/things")
}

/// `/{thing}/{name}`: a property, action or stream of a Thing.
pub(crate) fn affordance(thing: &str, name: &str) -> String {
    format!("/{thing}/{name}")
}

/// `/{thing}/ws`: a Thing's observation websocket.
pub(crate) fn websocket(thing: &str) -> String {
    affordance(thing, WEBSOCKET)
}

/// `/{thing}/events`: every event of a Thing, as Server-Sent Events.
pub(crate) fn all_events(thing: &str) -> String {
    affordance(thing, EVENTS)
}

/// `/{thing}/observe`: every observable property of a Thing, as Server-Sent Events.
pub(crate) fn observe_all_properties(thing: &str) -> String {
    affordance(thing, OBSERVE)
}

/// `/{thing}/{property}/observe`: one property's values, as Server-Sent Events.
pub(crate) fn observe_property(thing: &str, property: &str) -> String {
    format!("{}/{OBSERVE}", affordance(thing, property))
}

/// Whether a link relative to `base` is a Thing's websocket (`{thing}/ws`; no affordance can
/// be named `ws`, so nothing else has this shape).
pub(crate) fn is_websocket_link(href: &str) -> bool {
    href.split_once('/')
        .is_some_and(|(thing, rest)| !thing.is_empty() && rest == WEBSOCKET)
}

/// `{action}/run`: runs the action at `action` and answers with its output once it finishes.
pub(crate) fn run(action: &str) -> String {
    format!("{action}/run")
}

/// `{stream}/snapshot`: the newest frame of the stream at `stream`.
pub(crate) fn snapshot(stream: &str) -> String {
    format!("{stream}/snapshot")
}

/// `{stream}/h264`: the raw H.264 form (Annex B) of the stream at `stream`.
#[cfg(feature = "h264")]
pub(crate) fn h264(stream: &str) -> String {
    format!("{stream}/h264")
}

/// `{stream}/h264/units`: the timed H.264 form (one access unit per part) of the stream at
/// `stream`.
#[cfg(feature = "h264")]
pub(crate) fn h264_units(stream: &str) -> String {
    format!("{stream}/h264/units")
}

/// `{property}/history`: the history of the property at `property`.
pub(crate) fn history(property: &str) -> String {
    format!("{property}/history")
}

/// `{stream}/viewer`: the viewer page of the stream at `stream`.
pub(crate) fn viewer(stream: &str) -> String {
    format!("{stream}/viewer")
}

/// `/things/`: Thing name to TD URL.
pub(crate) fn things_index() -> String {
    format!("/{THINGS}/")
}

/// `/thing_descriptions/`: Thing name to TD.
pub(crate) fn thing_descriptions_index() -> String {
    format!("/{THING_DESCRIPTIONS}/")
}

/// `/.well-known/wot`: what this server hosts, for WoT Discovery (RFC 8615's well-known URI).
pub(crate) fn well_known_wot() -> String {
    "/.well-known/wot".to_owned()
}

/// `/action_invocations`: every invocation.
pub(crate) fn invocations() -> String {
    format!("/{INVOCATIONS}")
}

/// `/action_invocations/{id}`: one invocation (pass `"{id}"` for the route template).
pub(crate) fn invocation(id: &str) -> String {
    format!("/{INVOCATIONS}/{id}")
}

/// `/action_invocations/{id}/output`: an invocation's output.
pub(crate) fn invocation_output(id: &str) -> String {
    format!("{}/output", invocation(id))
}

/// `/blob/{id}`: a binary output.
pub(crate) fn blob(id: &str) -> String {
    format!("/{BLOB}/{id}")
}

/// `/openapi.json`.
pub(crate) fn openapi() -> String {
    format!("/{OPENAPI}")
}

/// `/docs`: the API browser (its page is `/docs/`).
pub(crate) fn docs() -> String {
    format!("/{DOCS}")
}

/// `/metrics`.
pub(crate) fn metrics() -> String {
    format!("/{METRICS}")
}

/// `/static`: the web UI's files.
pub(crate) fn static_files() -> String {
    format!("/{STATIC}")
}

/// A path as a link relative to a `base` URL ending in `/` (the leading `/` removed).
pub(crate) fn relative(path: &str) -> &str {
    path.strip_prefix('/').unwrap_or(path)
}

/// Whether a path (without the API prefix) stays readable without a token when access control
/// is on: the web UI's page and files, the OpenAPI document and the API browser, so that a
/// user can learn how to authenticate.
pub(crate) fn is_always_public(path: &str) -> bool {
    let docs = docs();
    path.is_empty()
        || path == "/"
        || path == openapi()
        || path == docs
        || path
            .strip_prefix(&docs)
            .is_some_and(|rest| rest.starts_with('/'))
        || path
            .strip_prefix(&static_files())
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Why `name` cannot be a URL segment (a Thing's or an affordance's name), if it cannot.
pub(crate) fn invalid_segment(name: &str) -> Option<&'static str> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!valid).then_some("use letters, digits, `_` and `-` only")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose() {
        assert_eq!(thing("camera"), "/camera/");
        assert_eq!(affordance("camera", "exposure"), "/camera/exposure");
        assert_eq!(websocket("camera"), "/camera/ws");
        assert_eq!(snapshot("/camera/s"), "/camera/s/snapshot");
        assert_eq!(viewer("/camera/s"), "/camera/s/viewer");
        assert_eq!(invocation("{id}"), "/action_invocations/{id}");
        assert_eq!(invocation_output("7"), "/action_invocations/7/output");
        assert_eq!(blob("7"), "/blob/7");
        assert_eq!(relative(&invocation("7")), "action_invocations/7");
    }

    #[test]
    fn every_first_segment_of_a_server_route_is_a_reserved_thing_name() {
        for path in [
            things_index(),
            thing_descriptions_index(),
            invocations(),
            blob("x"),
            openapi(),
            docs(),
            metrics(),
            static_files(),
            lab(),
            lab_sources(),
            lab_directory_things(),
        ] {
            let first = path.trim_start_matches('/').split('/').next().unwrap();
            assert!(RESERVED_THING_NAMES.contains(&first), "{path}");
        }
    }

    #[test]
    fn the_macros_reserve_the_same_affordance_names() {
        let names = include_str!("../macros/src/names.rs");
        let list = names
            .split("const RESERVED: &[&str] = &[")
            .nth(1)
            .and_then(|rest| rest.split("];").next())
            .expect("the macros' list of reserved names");
        let macro_names: Vec<&str> = list
            .split(',')
            .map(|name| name.trim().trim_matches('"'))
            .filter(|name| !name.is_empty())
            .collect();
        assert_eq!(macro_names, RESERVED_AFFORDANCE_NAMES);
    }

    #[test]
    fn websocket_links_are_recognised_by_their_shape() {
        assert!(is_websocket_link(relative(&websocket("camera"))));
        assert!(!is_websocket_link("camera/exposure"));
        assert!(!is_websocket_link("camera/exposure/observe"));
        assert!(!is_websocket_link("/ws"));
    }

    #[test]
    fn public_paths_are_the_ui_and_the_api_description() {
        for path in [
            "",
            "/",
            "/openapi.json",
            "/docs",
            "/docs/index.html",
            "/static/app.js",
        ] {
            assert!(is_always_public(path), "{path}");
        }
        for path in ["/docsx", "/staticfile", "/camera/", "/metrics", "/things/"] {
            assert!(!is_always_public(path), "{path}");
        }
    }

    #[test]
    fn segments_are_letters_digits_underscore_and_dash() {
        assert_eq!(invalid_segment("stage-2_a"), None);
        assert!(invalid_segment("").is_some());
        assert!(invalid_segment("a/b").is_some());
        assert!(invalid_segment("a b").is_some());
    }
}
