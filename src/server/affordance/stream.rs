//! Streams: `GET /{thing}/{stream}` (live MJPEG), its `/snapshot` and `/viewer`, their OpenAPI
//! operations, and the TD links that let a client find them. The routes themselves are the
//! stream module's, usable without the server ([`crate::stream::routes`]).

use std::sync::Arc;

use serde_json::json;

use super::{Affordance, Context, Serving};
use crate::layout;
use crate::openapi::{self, RouteDoc};
use crate::server::error::ServerError;
use crate::server::route_table::RouteTable;
use crate::stream::{MjpegStream, STREAM_CONTENT_TYPE, StreamRoutes};
use crate::td::{Link, ThingDescription};
use crate::thing::{StreamDescriptor, ThingDescriptor};

/// Streams: `GET /{thing}/{stream}` with its snapshot and viewer, and the TD's `links`.
pub(crate) struct Streams;

impl Affordance for Streams {
    fn names<T>(descriptor: &ThingDescriptor<T>) -> Vec<&'static str> {
        descriptor.streams.iter().map(|s| s.name).collect()
    }

    fn serve<T: Send + Sync + 'static>(at: &mut Serving<'_, T>) -> Result<(), ServerError> {
        for stream in &at.descriptor.streams {
            let handle = serve_one(
                at.name,
                at.thing,
                stream,
                at.context,
                &mut at.routes,
                &mut at.td,
            );
            at.streams.push(handle);
        }
        Ok(())
    }
}

/// Serves one stream: its routes, their documentation and its TD links. Returns the stream,
/// which the server stops at shutdown.
fn serve_one<T: Send + Sync + 'static>(
    thing_name: &str,
    thing: &Arc<T>,
    stream: &StreamDescriptor<T>,
    context: &Context,
    routes: &mut RouteTable,
    td: &mut ThingDescription,
) -> MjpegStream {
    let handle = (stream.access)(thing).clone();
    if let Some(size) = stream.ringbuffer {
        handle.set_ringbuffer_size(size);
    }
    let path = layout::affordance(thing_name, stream.name);
    let StreamRoutes {
        live,
        snapshot,
        viewer,
        h264,
    } = StreamRoutes::new(&path, handle.clone());
    let (name, description) = (stream.name, stream.description);
    routes.route(
        &live.0,
        live.1,
        [live_doc(thing_name, name, description, &live.0)],
    );
    routes.route(
        &snapshot.0,
        snapshot.1,
        [snapshot_doc(thing_name, name, &snapshot.0)],
    );
    routes.route(
        &viewer.0,
        viewer.1,
        [viewer_doc(thing_name, name, &viewer.0)],
    );
    // The MJPEG first: clients that take the first `alternate` link keep it.
    td.links.extend(links(&path));
    #[cfg(feature = "h264")]
    if let Some([annex_b, units]) = h264 {
        for (route, timed) in [(annex_b, false), (units, true)] {
            let doc = h264_doc(thing_name, name, &route.0, timed);
            routes.route(&route.0, route.1, [doc]);
        }
        td.links.extend(h264_links(&path));
    }
    #[cfg(not(feature = "h264"))]
    let _ = h264;
    context.metrics.add_stream(thing_name, name, handle.clone());
    handle
}

fn live_doc(thing: &str, name: &str, description: Option<&str>, path: &str) -> RouteDoc {
    RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_{name}"),
            "summary": format!("Live MJPEG stream {name}"),
            "description": description.unwrap_or("A live stream of JPEG frames."),
            "tags": [thing],
            "parameters": [{"name": "fps", "in": "query", "required": false,
                "description": "The highest frame rate this viewer wants",
                "schema": {"type": "number", "exclusiveMinimum": 0}}],
            "responses": {
                "200": {"description": "multipart/x-mixed-replace, one JPEG per part",
                    "content": {STREAM_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                "400": openapi::problem("An invalid `fps` (other query parameters, such as cache-busters, are ignored)"),
            },
        }),
    )
}

fn snapshot_doc(thing: &str, name: &str, path: &str) -> RouteDoc {
    RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_{name}_snapshot"),
            "summary": format!("The newest frame of {name}"),
            "tags": [thing],
            "responses": {
                "200": {"description": "A JPEG, with X-Timestamp and X-Frame-Index headers",
                    "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                "503": openapi::problem("No frame yet"),
            },
        }),
    )
}

fn viewer_doc(thing: &str, name: &str, path: &str) -> RouteDoc {
    RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_{name}_viewer"),
            "summary": format!("A web page showing {name}"),
            "tags": [thing],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }),
    )
}

/// The two H.264 forms of a stream: raw Annex B, and timed units.
#[cfg(feature = "h264")]
fn h264_doc(thing: &str, name: &str, path: &str, units: bool) -> RouteDoc {
    let (suffix, summary, description, content_type, body) = if units {
        (
            "_h264_units",
            format!("Live H.264 stream {name}, one access unit per part with its capture time"),
            "The H.264 form of the stream for players that decode units themselves (WebCodecs): \
             a `multipart/mixed` body, one access unit (Annex B) per part, each part with \
             `Content-Type: video/h264`, `Content-Length`, `X-Timestamp` (capture time, RFC 3339), \
             `X-Frame-Index` and `X-Keyframe` (`true` or `false`). The first part is a keyframe; a \
             viewer that falls behind skips to the next keyframe.",
            crate::stream::H264_UNITS_CONTENT_TYPE,
            "multipart/mixed, one H.264 access unit per part",
        )
    } else {
        (
            "_h264",
            format!("Live H.264 stream {name} (Annex B)"),
            "The H.264 form of the stream as a raw Annex B byte stream, from a keyframe on \
             (`ffmpeg -f h264 -i URL`). Encoded only while someone watches it; a viewer that \
             falls behind skips to the next keyframe.",
            crate::stream::H264_CONTENT_TYPE,
            "An H.264 Annex B byte stream",
        )
    };
    RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_{name}{suffix}"),
            "summary": summary,
            "description": description,
            "tags": [thing],
            "responses": {
                "200": {"description": body,
                    "content": {content_type: {"schema": {"type": "string", "format": "binary"}}}},
            },
        }),
    )
}

/// The TD links of a stream's H.264 forms, beside its MJPEG (`alternate`: the same images in
/// another format).
#[cfg(feature = "h264")]
fn h264_links(path: &str) -> [Link; 2] {
    [
        Link {
            href: layout::relative(&layout::h264(path)).to_owned(),
            media_type: crate::stream::H264_CONTENT_TYPE.to_owned(),
            rel: "alternate".to_owned(),
            anchor: None,
        },
        Link {
            href: layout::relative(&layout::h264_units(path)).to_owned(),
            media_type: crate::stream::H264_UNITS_CONTENT_TYPE.to_owned(),
            rel: "alternate".to_owned(),
            anchor: None,
        },
    ]
}

/// The TD links of a stream at `path`: the live stream (`alternate`) and its newest frame
/// (`preview`) ([TD 1.1 §5.3.4.1](https://www.w3.org/TR/wot-thing-description11/#link)).
fn links(path: &str) -> [Link; 2] {
    [
        Link {
            href: layout::relative(path).to_owned(),
            media_type: STREAM_CONTENT_TYPE.to_owned(),
            rel: "alternate".to_owned(),
            anchor: None,
        },
        Link {
            href: layout::relative(&layout::snapshot(path)).to_owned(),
            media_type: "image/jpeg".to_owned(),
            rel: "preview".to_owned(),
            anchor: None,
        },
    ]
}
