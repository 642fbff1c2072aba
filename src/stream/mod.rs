//! Live MJPEG streams: a timestamped ring buffer of JPEG frames, served to any number of viewers.
//!
//! - [`MjpegStream`]: the ring buffer a camera adds frames to; the heart of it.
//! - [`FrameStream`]: one viewer's frames, skipping to the newest when the viewer falls behind.
//! - [`MjpegStreamResponse`]: a frame stream as a `multipart/x-mixed-replace` HTTP response.
//! - [`routes`]: the stream, snapshot and viewer routes, for any axum router.
//!
//! # Examples
//!
//! A camera thread producing frames and an axum app serving them:
//!
//! ```no_run
//! use labthings::stream::{self, MjpegStream};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let camera = MjpegStream::new();
//! let producer = camera.clone();
//! std::thread::spawn(move || loop {
//!     let jpeg: Vec<u8> = capture_jpeg();
//!     producer.add_frame(jpeg).expect("the camera makes JPEGs");
//! });
//!
//! let app = axum::Router::new().merge(stream::routes("/camera/mjpeg_stream", camera));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! labthings::serve::serve(listener, app).await
//! # }
//! # fn capture_jpeg() -> Vec<u8> { vec![0xFF, 0xD8, 0xFF, 0xD9] }
//! ```

#[cfg(feature = "pipeline")]
mod bayer;
#[cfg(feature = "pipeline")]
mod encode;
mod entry;
#[cfg(feature = "h264")]
mod h264;
#[cfg(feature = "h264")]
mod h264_encoder;
mod mjpeg;
#[cfg(feature = "pipeline")]
mod pipeline;
#[cfg(feature = "pipeline")]
mod raw;
mod response;
mod routes;
mod shared;
mod viewer;

/// The JPEG with a comment (COM) segment holding `text` right after its start marker:
/// viewers and decoders ignore it; Pillow reads it as `Image.open(f).info["comment"]`,
/// exiftool as `Comment`. `None` if `jpeg` does not start with the JPEG start marker, or the
/// text is over a segment's 65,533 bytes.
///
/// # Examples
///
/// ```
/// let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
/// let commented = labthings::stream::jpeg_with_comment(&jpeg, b"hello").unwrap();
/// assert_eq!(commented, [0xFF, 0xD8, 0xFF, 0xFE, 0, 7, b'h', b'e', b'l', b'l', b'o', 0xFF, 0xD9]);
/// ```
pub fn jpeg_with_comment(jpeg: &[u8], text: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(text.len() + 2).ok()?;
    let rest = jpeg.strip_prefix(&[0xFF, 0xD8])?;
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xFE]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text);
    out.extend_from_slice(rest);
    Some(out)
}

#[cfg(feature = "pipeline")]
pub use bayer::{BayerPattern, MonoPacking};
#[cfg(feature = "pipeline")]
pub use encode::{JpegEncoder, pipelines_by_encoder};
pub use entry::{
    BOUNDARY, FRAME_INDEX_HEADER, RingbufferEntry, STREAM_CONTENT_TYPE, TIMESTAMP_HEADER,
};
#[cfg(feature = "h264")]
pub use h264::{
    AccessUnit, H264_CONTENT_TYPE, H264_UNITS_CONTENT_TYPE, H264Options, H264Stats, H264Stream,
    KEYFRAME_HEADER, MAX_LAG, UnitStream,
};
pub use mjpeg::{DEFAULT_RINGBUFFER_SIZE, Demand, MjpegStream, StreamStats};
#[cfg(feature = "pipeline")]
pub use pipeline::{FramePipeline, PipelineBuilder, PipelineStats};
#[cfg(feature = "pipeline")]
pub use raw::{FrameError, Gray16Window, PixelFormat, RawFrame};
pub use response::MjpegStreamResponse;
#[cfg(feature = "server")]
pub(crate) use routes::StreamRoutes;
pub use routes::routes;
pub use viewer::{FrameStream, InvalidViewerOption, ViewerOptions};

/// What can go wrong when adding or reading frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The bytes given to `add_frame` are not a JPEG image.
    #[error("frame of {len} bytes is not a JPEG: {reason}")]
    NotJpeg {
        /// How many bytes were given.
        len: usize,
        /// Which marker is missing.
        reason: &'static str,
    },
    /// The frame asked for has been pushed out of the ring buffer by newer frames.
    #[error("frame {index} has been overwritten; the oldest frame held is {oldest}")]
    Overwritten {
        /// The index asked for.
        index: u64,
        /// The oldest index the ring buffer still holds.
        oldest: u64,
    },
    /// No frame with this index has been added yet.
    #[error("frame {index} has not been added yet; the next frame will be {next}")]
    NotYetAdded {
        /// The index asked for.
        index: u64,
        /// The index the next frame will get.
        next: u64,
    },
    /// The stream was stopped while waiting for a frame.
    #[error("the stream was stopped")]
    Stopped,
}
