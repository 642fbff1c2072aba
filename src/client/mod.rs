//! The client side: read MJPEG streams and drive Things over HTTP (feature `client`).
//!
//! - [`MjpegClient`] reads any `multipart/x-mixed-replace` JPEG stream (ours or a network
//!   camera's) as an async [`Stream`](futures_util::Stream) of [`Frame`]s. It reconnects with
//!   backoff, detects a stalled server, drops the oldest frames for a slow consumer, and keeps
//!   [`MjpegStats`].
//! - [`ThingClient`] reads a Thing Description and gives typed property access, actions that
//!   wait for their result, observation over the websocket, and the Thing's streams.
//! - [`MultipartParser`] is the incremental parser under [`MjpegClient`], for callers with their
//!   own transport.
//!
//! Every failure is a [`ClientError`]; one the server explained carries its RFC 9457 problem
//! details.
//!
//! # Examples
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use labthings::client::ThingClient;
//!
//! # async fn run() -> Result<(), labthings::client::ClientError> {
//! let camera = ThingClient::connect("http://127.0.0.1:5000/camera/").await?;
//! camera.set("exposure_ms", &20.0).await?;
//! let exposure: f64 = camera.get("exposure_ms").await?;
//!
//! let mut frames = camera.stream("mjpeg_stream")?.connect();
//! while let Some(frame) = frames.next().await {
//!     let frame = frame?;
//!     println!("frame {} ({} bytes), exposure {exposure} ms", frame.sequence, frame.data.len());
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod events;
mod http;
mod invocation;
mod mjpeg;
mod multipart;
mod observe;
mod thing;

pub use axum::http::{HeaderName, HeaderValue, StatusCode, header};
pub use error::ClientError;
pub use invocation::{ActionStatus, Invocation};
pub use mjpeg::{Frame, MjpegClient, MjpegClientBuilder, MjpegStats, Reconnect};
pub use multipart::{BoundaryError, DEFAULT_MAX_PART_SIZE, MultipartParser, Part};
/// The HTTP client underneath, re-exported for [`MjpegClientBuilder::http_client`] and
/// [`ThingClientBuilder`]: pass your own `reqwest::Client` for custom roots or proxies.
pub use reqwest;
pub use thing::{ThingClient, ThingClientBuilder};

/// `Bearer <token>` as a sensitive header value (kept out of `Debug` output). `None` for a
/// token that cannot be a header value: the request then goes without one, and the server's
/// 401 says more than a local error could.
fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}
