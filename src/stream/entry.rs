//! One frame of a stream, and its encoding as one part of a `multipart/x-mixed-replace` body.

use std::fmt;
use std::io::Write as _;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

use super::StreamError;

/// The multipart boundary of every MJPEG stream we serve.
pub const BOUNDARY: &str = "frame";

/// The `Content-Type` of an MJPEG stream response.
pub const STREAM_CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=frame";

/// The header carrying the frame's timestamp (RFC 3339, UTC, microseconds), in every part of the
/// stream and on snapshots.
pub const TIMESTAMP_HEADER: &str = "x-timestamp";

/// The header carrying the frame's index in its stream, in every part and on snapshots.
pub const FRAME_INDEX_HEADER: &str = "x-frame-index";

/// The delimiter that opens the first part of a stream.
pub(crate) const OPENING_DELIMITER: &[u8] = b"--frame\r\n";

/// What follows every frame: the CRLF that ends the part and the delimiter of the next part.
///
/// Sending the delimiter right after the frame (instead of before the next one) is what lets a
/// multipart reader, a browser among them, know that the frame is complete the moment it arrives.
const CLOSING_DELIMITER: &[u8] = b"\r\n--frame\r\n";

/// Room left in front of a frame for its part headers, so that headers, frame and closing
/// delimiter share one buffer and go out as one body chunk.
const HEAD_RESERVE: usize = 192;

/// A frame in a stream's ring buffer: the JPEG bytes, when it was captured or added, and its
/// index in the stream.
///
/// Cloning an entry is cheap: the bytes are reference counted and shared by every clone, so
/// every viewer of a stream sends the same buffer.
#[derive(Clone)]
pub struct RingbufferEntry {
    /// The JPEG image.
    pub frame: Bytes,
    /// When the frame was captured (if the producer said so) or added to the stream, to the
    /// microsecond (the precision of the `X-Timestamp` header).
    pub timestamp: DateTime<Utc>,
    /// The position of the frame in its stream: 0 for the first frame, then one more each time.
    pub index: u64,
    /// The frame encoded as one multipart body part, closing delimiter included. `frame` is a
    /// slice of this buffer.
    part: Bytes,
}

impl RingbufferEntry {
    /// Makes an entry from a JPEG that is not in any ring buffer, for a custom source of frames
    /// that is to be served with [`MjpegStreamResponse`](super::MjpegStreamResponse).
    ///
    /// # Errors
    ///
    /// [`StreamError::NotJpeg`] if `frame` does not start with the JPEG SOI marker (`FF D8`) and
    /// end with the EOI marker (`FF D9`).
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::stream::RingbufferEntry;
    ///
    /// let jpeg = vec![0xFF, 0xD8, 0xFF, 0xD9];
    /// let entry = RingbufferEntry::new(jpeg, chrono::Utc::now(), 7).unwrap();
    /// assert_eq!(entry.index, 7);
    /// assert!(RingbufferEntry::new(b"GIF89a".to_vec(), chrono::Utc::now(), 8).is_err());
    /// ```
    pub fn new(
        frame: impl Into<Bytes>,
        timestamp: DateTime<Utc>,
        index: u64,
    ) -> Result<Self, StreamError> {
        let frame = frame.into();
        check_jpeg(&frame)?;
        Ok(PartBuffer::new(&frame).finish(index, timestamp))
    }

    /// The frame as one complete multipart body part (headers, JPEG, closing delimiter).
    pub(crate) fn part(&self) -> &Bytes {
        &self.part
    }
}

impl fmt::Debug for RingbufferEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingbufferEntry")
            .field("frame", &format_args!("{} bytes", self.frame.len()))
            .field("timestamp", &self.timestamp)
            .field("index", &self.index)
            .finish()
    }
}

/// Checks the JPEG start-of-image and end-of-image markers.
pub(crate) fn check_jpeg(frame: &[u8]) -> Result<(), StreamError> {
    if !frame.starts_with(&[0xFF, 0xD8]) {
        return Err(StreamError::NotJpeg {
            len: frame.len(),
            reason: "it does not start with the SOI marker FF D8",
        });
    }
    if frame.len() < 4 || !frame.ends_with(&[0xFF, 0xD9]) {
        return Err(StreamError::NotJpeg {
            len: frame.len(),
            reason: "it does not end with the EOI marker FF D9",
        });
    }
    Ok(())
}

/// Formats a timestamp the way the stream headers carry it.
pub(crate) fn format_timestamp(timestamp: &DateTime<Utc>) -> String {
    timestamp.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A frame copied into a part buffer, with room in front for headers not yet known.
///
/// The copy (the only one a frame ever gets) happens in [`PartBuffer::new`], outside the
/// stream's lock; [`PartBuffer::finish`] writes the few header bytes once index and timestamp
/// are assigned, under the lock.
pub(crate) struct PartBuffer {
    buffer: BytesMut,
    frame_len: usize,
}

impl PartBuffer {
    pub(crate) fn new(frame: &[u8]) -> Self {
        let mut buffer =
            BytesMut::with_capacity(HEAD_RESERVE + frame.len() + CLOSING_DELIMITER.len());
        buffer.resize(HEAD_RESERVE, 0);
        buffer.extend_from_slice(frame);
        buffer.extend_from_slice(CLOSING_DELIMITER);
        Self {
            buffer,
            frame_len: frame.len(),
        }
    }

    /// Writes the part headers in front of the frame and freezes the part.
    pub(crate) fn finish(mut self, index: u64, timestamp: DateTime<Utc>) -> RingbufferEntry {
        // The wire carries microseconds; keep exactly what viewers will read.
        let timestamp = timestamp.trunc_subsecs(6);
        let mut head = Vec::with_capacity(HEAD_RESERVE);
        // Writing into a Vec cannot fail.
        let _ = write!(
            head,
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {}\r\nX-Frame-Index: {}\r\n\r\n",
            self.frame_len,
            format_timestamp(&timestamp),
            index
        );
        let part = if head.len() <= HEAD_RESERVE {
            let start = HEAD_RESERVE - head.len();
            self.buffer[start..HEAD_RESERVE].copy_from_slice(&head);
            self.buffer.freeze().slice(start..)
        } else {
            // Only a timestamp beyond the year 9999 gets here; pay for a second copy then.
            let mut part = BytesMut::from(&head[..]);
            part.extend_from_slice(&self.buffer[HEAD_RESERVE..]);
            part.freeze()
        };
        let frame = part.slice(head.len()..head.len() + self.frame_len);
        RingbufferEntry {
            frame,
            timestamp,
            index,
            part,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];

    #[test]
    fn part_is_headers_then_frame_then_closing_delimiter() {
        let timestamp = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let entry = RingbufferEntry::new(JPEG, timestamp, 42).unwrap();
        let expected = b"Content-Type: image/jpeg\r\nContent-Length: 7\r\n\
X-Timestamp: 2023-11-14T22:13:20.123456Z\r\nX-Frame-Index: 42\r\n\r\n\
\xFF\xD8\x01\x02\x03\xFF\xD9\r\n--frame\r\n";
        assert_eq!(&entry.part()[..], &expected[..]);
        assert_eq!(&entry.frame[..], JPEG);
    }

    #[test]
    fn frame_is_a_view_into_the_part_not_a_copy() {
        let entry = RingbufferEntry::new(JPEG, Utc::now(), 0).unwrap();
        let part = entry.part().as_ptr_range();
        let frame = entry.frame.as_ptr_range();
        assert!(part.start <= frame.start && frame.end <= part.end);
    }

    #[test]
    fn far_future_timestamps_still_encode() {
        let timestamp = DateTime::<Utc>::MAX_UTC;
        let entry = RingbufferEntry::new(JPEG, timestamp, u64::MAX).unwrap();
        assert_eq!(&entry.frame[..], JPEG);
        assert!(entry.part().ends_with(CLOSING_DELIMITER));
    }

    #[test]
    fn non_jpeg_bytes_are_rejected_with_the_reason() {
        let no_soi = check_jpeg(b"\x89PNG\r\n").unwrap_err().to_string();
        assert!(no_soi.contains("SOI"), "{no_soi}");
        let no_eoi = check_jpeg(&[0xFF, 0xD8, 0, 0]).unwrap_err().to_string();
        assert!(no_eoi.contains("EOI"), "{no_eoi}");
        assert!(check_jpeg(&[]).is_err());
        assert!(check_jpeg(&[0xFF, 0xD8, 0xD9]).is_err());
    }
}
