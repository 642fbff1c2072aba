//! [`MjpegStreamResponse`]: an MJPEG stream as an HTTP response.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use super::RingbufferEntry;
use super::entry::{OPENING_DELIMITER, STREAM_CONTENT_TYPE};

/// An MJPEG stream as an HTTP response: `multipart/x-mixed-replace; boundary=frame`.
///
/// Modelled on axum's `Sse`: it wraps a [`Stream`] of frames, usually a
/// [`FrameStream`](super::FrameStream) from [`MjpegStream::frames`](super::MjpegStream::frames),
/// and sends each frame as it is yielded; nothing buffers the stream.
///
/// Each frame is one body chunk, shared by every viewer (no per-viewer copy):
///
/// ```text
/// Content-Type: image/jpeg\r\n
/// Content-Length: 57344\r\n
/// X-Timestamp: 2026-11-22T10:00:00.033000Z\r\n
/// X-Frame-Index: 41\r\n
/// \r\n
/// <JPEG bytes>\r\n
/// --frame\r\n
/// ```
///
/// The body opens with `--frame\r\n`, and the delimiter that closes each frame is sent right
/// after it. A multipart reader knows a part is complete when it sees the next delimiter, so a
/// browser paints each frame the moment it arrives, and the last frame of a paused camera is
/// shown rather than held back. Parts carry `Content-Length` for clients that need it.
///
/// When the frame stream ends (for example on [`MjpegStream::stop`](super::MjpegStream::stop)),
/// the response ends. When the client disconnects, the frame stream is dropped, which
/// unregisters the viewer.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::get};
/// use labthings::stream::{MjpegStream, MjpegStreamResponse};
///
/// let stream = MjpegStream::new();
/// let app: Router = Router::new().route(
///     "/camera.mjpeg",
///     get(move || {
///         let stream = stream.clone();
///         async move { MjpegStreamResponse::new(stream.frames()) }
///     }),
/// );
/// ```
#[must_use]
pub struct MjpegStreamResponse<S> {
    frames: S,
}

impl<S> std::fmt::Debug for MjpegStreamResponse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegStreamResponse")
            .finish_non_exhaustive()
    }
}

impl<S> MjpegStreamResponse<S>
where
    S: Stream<Item = RingbufferEntry> + Send + 'static,
{
    /// A response that sends the frames of `frames`.
    pub fn new(frames: S) -> Self {
        Self { frames }
    }
}

impl<S> IntoResponse for MjpegStreamResponse<S>
where
    S: Stream<Item = RingbufferEntry> + Send + 'static,
{
    fn into_response(self) -> Response {
        let opening = stream::once(async { Bytes::from_static(OPENING_DELIMITER) });
        let parts = self.frames.map(|entry| entry.part().clone());
        let body = Body::from_stream(opening.chain(parts).map(Ok::<_, Infallible>));
        let mut response = body.into_response();
        insert_stream_headers(response.headers_mut());
        response
    }
}

/// The headers of a stream response, shared by `GET` and `HEAD`.
pub(crate) fn insert_stream_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(STREAM_CONTENT_TYPE),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // Ask reverse proxies (nginx) not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
