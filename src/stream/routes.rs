//! The HTTP routes of one stream, mountable on any axum [`Router`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use bytes::Bytes;

use super::entry::{FRAME_INDEX_HEADER, TIMESTAMP_HEADER, format_timestamp};
use super::response::insert_stream_headers;
use super::{MjpegStream, MjpegStreamResponse, ViewerOptions};
use crate::Problem;
use crate::layout;

/// The viewer page; `{{name}}` is replaced by the stream's name, `{{h264}}` by the H.264 part.
const VIEWER_PAGE: &str = include_str!("../../static/stream-viewer.html");

/// The viewer page's H.264 part (a format switch, a canvas and the player), for a stream that
/// offers H.264; `{{player}}` is replaced by the player.
#[cfg(feature = "h264")]
const VIEWER_H264: &str = include_str!("../../static/stream-viewer-h264.html");

/// The H.264 player (WebCodecs) the web UI also uses.
#[cfg(feature = "h264")]
const H264_PLAYER: &str = include_str!("../../static/h264-player.js");

/// The routes of one stream at `path`, for any axum [`Router`]; needs nothing else of the
/// framework.
///
/// | route | answer |
/// |---|---|
/// | `GET <path>` | the live stream, [`MjpegStreamResponse`]; query `fps=` caps this viewer's frame rate |
/// | `GET <path>/snapshot` | the newest frame, `image/jpeg`, with `X-Timestamp` and `X-Frame-Index`; 503 problem JSON before the first frame |
/// | `GET <path>/viewer` | a small HTML page showing the stream (and, for a stream offering H.264 in a browser with WebCodecs, a switch to it) |
///
/// With feature `h264`, a stream made [`with_h264`](MjpegStream::with_h264) also has:
///
/// | route | answer |
/// |---|---|
/// | `GET <path>/h264` | the live H.264 stream, raw Annex B (`video/h264`), from a keyframe on |
/// | `GET <path>/h264/units` | the same access units as `multipart/mixed` parts, each with its `X-Timestamp`, `X-Frame-Index` and `X-Keyframe` |
///
/// `HEAD` works on all of them (a `HEAD` of a stream does not count as a viewer). A bad query
/// string is a 400 problem JSON naming the parameter.
///
/// For the bounded latency of slow viewers described in [`MjpegStream`], serve the router with
/// [`crate::serve`], which limits what each connection may queue.
///
/// # Panics
///
/// If `path` does not start with `/` or ends with `/` (axum's rules for route paths).
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use labthings::stream::{self, MjpegStream};
///
/// let camera = MjpegStream::new();
/// let app: Router = Router::new()
///     .merge(stream::routes("/camera/mjpeg_stream", camera.clone()));
/// ```
pub fn routes<S>(path: &str, stream: MjpegStream) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let routes = StreamRoutes::new(path, stream);
    [routes.live, routes.snapshot, routes.viewer]
        .into_iter()
        .chain(routes.h264.into_iter().flatten())
        .fold(Router::new(), |router, (path, route)| {
            router.route(&path, route)
        })
}

/// The three routes of one stream, each with its path, for a caller that documents them one
/// by one (the Thing server).
pub(crate) struct StreamRoutes<S> {
    /// `<path>`: the live stream.
    pub(crate) live: (String, MethodRouter<S>),
    /// `<path>/snapshot`: the newest frame.
    pub(crate) snapshot: (String, MethodRouter<S>),
    /// `<path>/viewer`: the viewer page.
    pub(crate) viewer: (String, MethodRouter<S>),
    /// `<path>/h264` and `<path>/h264/units`, when the stream offers H.264.
    pub(crate) h264: Option<[(String, MethodRouter<S>); 2]>,
}

impl<S: Clone + Send + Sync + 'static> StreamRoutes<S> {
    /// The routes of `stream` at `path`.
    ///
    /// # Panics
    ///
    /// If `path` does not start with `/` or ends with `/`.
    pub(crate) fn new(path: &str, stream: MjpegStream) -> Self {
        assert!(
            path.starts_with('/') && !path.ends_with('/'),
            "a stream path starts with `/` and does not end with one, got {path:?}"
        );
        let name = path.rsplit('/').next().unwrap_or_default();
        #[cfg(feature = "h264")]
        let h264_part = if stream.h264().is_some() {
            VIEWER_H264.replace("{{player}}", H264_PLAYER)
        } else {
            String::new()
        };
        #[cfg(not(feature = "h264"))]
        let h264_part = String::new();
        let page = Html(
            VIEWER_PAGE
                .replace("{{h264}}", &h264_part)
                .replace("{{name}}", &escape_html(name)),
        );
        #[cfg(feature = "h264")]
        let h264 = stream.h264().map(|h264| {
            let annex_b = h264.clone();
            [
                (
                    layout::h264(path),
                    get(
                        move |method: Method| async move { h264_response(method, &annex_b, false) },
                    ),
                ),
                (
                    layout::h264_units(path),
                    get(move |method: Method| async move { h264_response(method, &h264, true) }),
                ),
            ]
        });
        #[cfg(not(feature = "h264"))]
        let h264 = None;
        let state = Arc::new(StreamRoute {
            stream,
            label: Arc::from(path),
        });
        Self {
            h264,
            live: (path.to_owned(), get(live).with_state(state.clone())),
            snapshot: (layout::snapshot(path), get(snapshot).with_state(state)),
            viewer: (layout::viewer(path), get(viewer).with_state(page)),
        }
    }
}

/// What the stream's handlers need.
struct StreamRoute {
    stream: MjpegStream,
    /// The path, for the viewer logs.
    label: Arc<str>,
}

/// `GET <path>`: the live stream (`HEAD`: its headers only).
async fn live(
    State(route): State<Arc<StreamRoute>>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let options = match ViewerOptions::from_query(&query) {
        Ok(options) => options,
        Err(invalid) => {
            return Problem::new(StatusCode::BAD_REQUEST)
                .with_detail(format!("Invalid stream request: {invalid}."))
                .with_invalid_param(invalid.name, invalid.reason)
                .into_response();
        }
    };
    if method == Method::HEAD {
        // A body of unknown length, like the stream's, so HEAD reports what GET would send
        // (no `Content-Length: 0`); hyper sends no body for HEAD.
        let mut response =
            Body::from_stream(futures_util::stream::empty::<Result<Bytes, Infallible>>())
                .into_response();
        insert_stream_headers(response.headers_mut());
        return response;
    }
    MjpegStreamResponse::new(route.stream.frames_logged(options, route.label.clone()))
        .into_response()
}

/// `GET <path>/h264` (`units`: `<path>/h264/units`); `HEAD` sends the headers and counts no
/// viewer.
#[cfg(feature = "h264")]
fn h264_response(method: Method, stream: &super::H264Stream, units: bool) -> Response {
    if method == Method::HEAD {
        let body = Body::from_stream(futures_util::stream::empty::<Result<Bytes, Infallible>>());
        return super::h264::stream_response(body, units);
    }
    if units {
        stream.units_response()
    } else {
        stream.annex_b_response()
    }
}

/// `GET <path>/viewer`: the page.
async fn viewer(State(page): State<Html<String>>) -> Html<String> {
    page
}

/// How long a snapshot of an unwatched stream waits for a fresh frame (a frame pipeline
/// encodes only on demand) before answering with the newest frame held.
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET <path>/snapshot`: the newest frame. An unwatched stream (whose producer may encode only
/// on demand), or one with no frame yet (a viewer that just came, whose first frame is being
/// encoded), is asked for a fresh frame first, for up to half a second.
async fn snapshot(State(route): State<Arc<StreamRoute>>) -> Response {
    let fresh = if route.stream.is_watched() && route.stream.latest().is_some() {
        None
    } else {
        tokio::time::timeout(SNAPSHOT_WAIT, route.stream.grab_frame())
            .await
            .ok()
            .and_then(Result::ok)
    };
    let Some(entry) = fresh.or_else(|| route.stream.latest()) else {
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_title("No frame yet")
            .with_detail(
                "The stream has no frame yet: the camera has not produced one. Try again shortly.",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            .into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format_timestamp(&entry.timestamp)) {
        headers.insert(TIMESTAMP_HEADER, value);
    }
    headers.insert(FRAME_INDEX_HEADER, HeaderValue::from(entry.index));
    (headers, entry.frame).into_response()
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_the_viewer_page() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    #[should_panic(expected = "starts with `/`")]
    fn a_relative_path_is_refused() {
        let _: Router = routes("camera/stream", MjpegStream::new());
    }
}
