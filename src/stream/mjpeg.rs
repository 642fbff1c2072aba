//! [`MjpegStream`]: a ring buffer of JPEG frames that any number of viewers read.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::entry::{PartBuffer, check_jpeg};
use super::shared::{Latest, Ring, Shared};
use super::viewer::{FrameStream, ViewerOptions};
#[cfg(feature = "h264")]
use super::{H264Options, H264Stream};
use super::{RingbufferEntry, StreamError};

/// The number of frames a stream keeps unless told otherwise.
pub const DEFAULT_RINGBUFFER_SIZE: usize = 10;

/// A live stream of JPEG frames, served to any number of viewers.
///
/// A producer (a camera driver thread, or async code) calls [`add_frame`](Self::add_frame);
/// viewers read with [`frames`](Self::frames), [`latest`](Self::latest),
/// [`grab_frame`](Self::grab_frame) or over HTTP through [`routes`](super::routes).
///
/// - Every frame gets its index and timestamp inside `add_frame`, under one short lock, so
///   indices follow the order frames were added, with no gaps and no duplicates, even with
///   several producer threads.
/// - The last `ringbuffer_size` frames are kept and can be read back by index with
///   [`entry`](Self::entry).
/// - Frame bytes are [`Bytes`](bytes::Bytes): every viewer sends the same buffer; nothing is copied per viewer.
/// - `add_frame` never waits for viewers. A viewer that cannot keep up skips to the newest frame
///   instead of queueing old ones, so it never slows the producer or another viewer.
///
/// `MjpegStream` is a handle: clones share the same stream, so keep one in your Thing and give
/// one to the thread that captures frames.
///
/// # Examples
///
/// ```
/// use labthings::stream::MjpegStream;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let stream = MjpegStream::new();
/// let producer = stream.clone();
/// std::thread::spawn(move || {
///     // A real camera thread would encode images here.
///     let jpeg = vec![0xFF, 0xD8, 0xFF, 0xD9];
///     producer.add_frame(jpeg).expect("a JPEG");
/// })
/// .join()
/// .unwrap();
///
/// let latest = stream.latest().expect("one frame was added");
/// assert_eq!(latest.index, 0);
/// assert_eq!(stream.frames_added(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct MjpegStream {
    shared: Arc<Shared>,
}

/// Counters of a stream, read with [`MjpegStream::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StreamStats {
    /// Frames added since the stream was made (the index the next frame will get).
    pub frames_added: u64,
    /// Viewers reading the stream now.
    pub viewers: usize,
    /// Frames handed to viewers, counted once per viewer.
    pub frames_sent: u64,
    /// Frames viewers skipped because they could not keep up or asked for a lower frame rate,
    /// counted once per viewer.
    pub frames_skipped: u64,
}

impl Default for MjpegStream {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MjpegStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegStream")
            .field("ringbuffer_size", &self.ringbuffer_size())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Keeps a stream [watched](MjpegStream::is_watched) while it lives; from [`MjpegStream::demand`].
#[derive(Debug)]
pub struct Demand(Arc<Shared>);

impl Drop for Demand {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.demand.notify_waiters();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl MjpegStream {
    /// A stream that keeps the last [`DEFAULT_RINGBUFFER_SIZE`] (10) frames.
    pub fn new() -> Self {
        Self::with_ringbuffer_size(DEFAULT_RINGBUFFER_SIZE)
    }

    /// A stream that keeps the last `size` frames.
    ///
    /// # Panics
    ///
    /// If `size` is 0: a stream must keep at least the newest frame.
    pub fn with_ringbuffer_size(size: usize) -> Self {
        assert!(
            size > 0,
            "an MjpegStream's ring buffer needs room for one frame"
        );
        Self {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    entries: VecDeque::with_capacity(size),
                    capacity: size,
                    next_index: 0,
                }),
                latest: watch::Sender::new(Latest::default()),
                viewers: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                demand: tokio::sync::Notify::new(),
                frames_sent: AtomicU64::new(0),
                frames_skipped: AtomicU64::new(0),
                history_seconds: Mutex::new(0.0),
                #[cfg(feature = "h264")]
                h264: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The same stream, offering H.264 beside its MJPEG (feature `h264`): a
    /// [`FramePipeline`](super::FramePipeline) built for it later also encodes H.264, with
    /// `options`, while someone watches that form; the server serves it at
    /// `/{thing}/{stream}/h264` (Annex B) and `/{thing}/{stream}/h264/units` (timed, for the
    /// web UI), and lists both in the Thing Description. Call it where the stream is made,
    /// before the server is built. A second call keeps the first options.
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::stream::{H264Options, MjpegStream};
    ///
    /// let stream = MjpegStream::new().with_h264(H264Options::default().with_bitrate(2_000_000));
    /// assert!(stream.h264().is_some());
    /// assert!(MjpegStream::new().h264().is_none());
    /// ```
    #[cfg(feature = "h264")]
    pub fn with_h264(self, options: H264Options) -> Self {
        let _ = self.shared.h264.set(H264Stream::new(options));
        self
    }

    /// The stream's H.264 form, if it offers one ([`with_h264`](Self::with_h264)).
    #[cfg(feature = "h264")]
    pub fn h264(&self) -> Option<H264Stream> {
        self.shared.h264.get().cloned()
    }

    /// Adds a JPEG frame, timestamped now, and returns the index it was given.
    ///
    /// Callable from any thread and from async code; it never blocks on viewers. The frame is
    /// copied once, outside the lock, into the buffer every viewer will send.
    ///
    /// # Errors
    ///
    /// [`StreamError::NotJpeg`] if the bytes do not start with the JPEG SOI marker (`FF D8`) and
    /// end with the EOI marker (`FF D9`); nothing is added then.
    pub fn add_frame(&self, frame: impl AsRef<[u8]>) -> Result<u64, StreamError> {
        self.add(frame.as_ref(), None)
    }

    /// Adds a JPEG frame with the time it was captured, and returns the index it was given.
    ///
    /// Use this when the camera reports when it took the image; viewers see this timestamp.
    ///
    /// # Errors
    ///
    /// As [`add_frame`](Self::add_frame).
    pub fn add_frame_at(
        &self,
        frame: impl AsRef<[u8]>,
        captured: DateTime<Utc>,
    ) -> Result<u64, StreamError> {
        self.add(frame.as_ref(), Some(captured))
    }

    fn add(&self, frame: &[u8], captured: Option<DateTime<Utc>>) -> Result<u64, StreamError> {
        check_jpeg(frame)?;
        let part = PartBuffer::new(frame);
        let mut ring = self.lock_ring();
        let index = ring.next_index;
        let entry = part.finish(index, captured.unwrap_or_else(Utc::now));
        ring.next_index += 1;
        if ring.entries.len() == ring.capacity {
            ring.entries.pop_front();
        }
        ring.entries.push_back(entry.clone());
        // Still under the ring lock, so viewers see frames in index order.
        self.shared
            .latest
            .send_modify(|latest| latest.entry = Some(entry));
        Ok(index)
    }

    /// The newest frame, if any frame has been added.
    pub fn latest(&self) -> Option<RingbufferEntry> {
        self.lock_ring().entries.back().cloned()
    }

    /// The frame with the given index, if the ring buffer still holds it.
    ///
    /// # Errors
    ///
    /// [`StreamError::Overwritten`] if newer frames have pushed it out of the ring buffer, and
    /// [`StreamError::NotYetAdded`] if no frame has that index yet.
    pub fn entry(&self, index: u64) -> Result<RingbufferEntry, StreamError> {
        let ring = self.lock_ring();
        if index >= ring.next_index {
            return Err(StreamError::NotYetAdded {
                index,
                next: ring.next_index,
            });
        }
        let oldest = ring.next_index - ring.entries.len() as u64;
        if index < oldest {
            return Err(StreamError::Overwritten { index, oldest });
        }
        Ok(ring.entries[(index - oldest) as usize].clone())
    }

    /// Whether anyone needs this stream's frames now: a viewer, or a caller waiting for a frame
    /// ([`grab_frame`](Self::grab_frame), [`next_frame_after`](Self::next_frame_after): a
    /// capture, a recording). A producer may pause its sensor while nobody does; a
    /// [`FramePipeline`](super::FramePipeline) encodes nothing meanwhile.
    pub fn is_watched(&self) -> bool {
        self.shared.watched()
    }

    /// Counts as watching the stream for as long as the guard lives (a recording between two
    /// frames, say), so that a producer that pauses while unwatched keeps going.
    pub fn demand(&self) -> Demand {
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        self.shared.demand.notify_waiters();
        Demand(self.shared.clone())
    }

    /// Arms (or, with 0, disarms) the stream's pre-trigger history: while armed, the stream
    /// counts as watched even with nobody watching, so its producer keeps making frames and
    /// the ring buffer holds the last ones for a recording's `pre_seconds` (up to `seconds`,
    /// as far as the ring buffer's size allows). That costs what encoding every frame costs;
    /// disarmed, a pipeline camera with nobody watching does no work at all. A value that is
    /// not a finite number of seconds, or is negative, disarms.
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::stream::MjpegStream;
    ///
    /// let stream = MjpegStream::with_ringbuffer_size(150);
    /// assert!(!stream.is_watched());
    /// stream.arm_history(5.0);
    /// assert!(stream.is_watched(), "the producer keeps going for the history");
    /// assert_eq!(stream.history_seconds(), 5.0);
    /// stream.arm_history(0.0);
    /// assert!(!stream.is_watched());
    /// ```
    pub fn arm_history(&self, seconds: f64) {
        let seconds = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            0.0
        };
        let mut armed = self
            .shared
            .history_seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (*armed > 0.0, seconds > 0.0) {
            (false, true) => {
                self.shared.waiting.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        *armed = seconds;
        drop(armed);
        self.shared.demand.notify_waiters();
    }

    /// The seconds of pre-trigger history armed ([`arm_history`](Self::arm_history)); 0 when
    /// none is.
    pub fn history_seconds(&self) -> f64 {
        *self
            .shared
            .history_seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until someone needs this stream's frames (at once if someone does).
    pub async fn watched(&self) {
        loop {
            let changed = self.shared.demand.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.shared.watched() {
                return;
            }
            changed.await;
        }
    }

    /// Every frame the ring buffer holds now, oldest first (cheap: the frames are shared, not
    /// copied). A recording's `pre_seconds` come from these.
    pub fn held_frames(&self) -> Vec<RingbufferEntry> {
        self.lock_ring().entries.iter().cloned().collect()
    }

    /// Waits for the next frame added after this call, and returns it.
    ///
    /// # Errors
    ///
    /// [`StreamError::Stopped`] if [`stop`](Self::stop) is called while waiting.
    pub async fn grab_frame(&self) -> Result<RingbufferEntry, StreamError> {
        let after = self.lock_ring().next_index.checked_sub(1);
        self.wait_for_frame_after(after).await
    }

    /// The oldest frame still held whose index is greater than `index`, waiting for one if there
    /// is none yet.
    ///
    /// To read every frame, call this with the index of the frame you read last: you get the
    /// next one, or, if you fell more than a ring buffer behind, the oldest one still held (its
    /// `index` tells you how many you missed).
    ///
    /// # Errors
    ///
    /// [`StreamError::Stopped`] if [`stop`](Self::stop) is called while waiting.
    pub async fn next_frame_after(&self, index: u64) -> Result<RingbufferEntry, StreamError> {
        self.wait_for_frame_after(Some(index)).await
    }

    async fn wait_for_frame_after(
        &self,
        after: Option<u64>,
    ) -> Result<RingbufferEntry, StreamError> {
        let mut latest = self.shared.latest.subscribe();
        let generation = latest.borrow_and_update().generation;
        let _waiting = super::shared::Waiting::new(&self.shared);
        loop {
            {
                let ring = self.lock_ring();
                if let Some(entry) = ring
                    .entries
                    .iter()
                    .find(|entry| after.is_none_or(|after| entry.index > after))
                {
                    return Ok(entry.clone());
                }
            }
            // `changed` fails only if the sender is gone, and `self` holds it.
            let _ = latest.changed().await;
            if latest.borrow_and_update().generation != generation {
                return Err(StreamError::Stopped);
            }
        }
    }

    /// A stream of frames for one viewer, starting with the newest frame at once.
    ///
    /// See [`FrameStream`] for what happens when the viewer falls behind.
    pub fn frames(&self) -> FrameStream {
        self.frames_with(ViewerOptions::default())
    }

    /// A stream of frames for one viewer, with options such as a frame-rate cap.
    pub fn frames_with(&self, options: ViewerOptions) -> FrameStream {
        FrameStream::new(
            self.shared.clone(),
            self.shared.latest.subscribe(),
            options,
            None,
        )
    }

    /// A viewer whose connection and disconnection (with its frames sent and skipped) are
    /// logged under `label`.
    pub(crate) fn frames_logged(&self, options: ViewerOptions, label: Arc<str>) -> FrameStream {
        FrameStream::new(
            self.shared.clone(),
            self.shared.latest.subscribe(),
            options,
            Some(label),
        )
    }

    /// Ends every viewer's stream, cleanly (an HTTP viewer's response ends after its current
    /// frame and closing delimiter), and wakes every [`grab_frame`](Self::grab_frame) with
    /// [`StreamError::Stopped`].
    ///
    /// The stream itself stays usable: frames added later are served to viewers that connect
    /// later, so a camera that stops and starts again keeps its stream and its indices.
    pub fn stop(&self) {
        self.shared
            .latest
            .send_modify(|latest| latest.generation += 1);
        #[cfg(feature = "h264")]
        if let Some(h264) = self.shared.h264.get() {
            h264.stop();
        }
    }

    /// Changes how many frames the ring buffer keeps; when it shrinks, the oldest go.
    ///
    /// # Panics
    ///
    /// If `size` is 0.
    pub fn set_ringbuffer_size(&self, size: usize) {
        assert!(
            size > 0,
            "an MjpegStream's ring buffer needs room for one frame"
        );
        let mut ring = self.lock_ring();
        while ring.entries.len() > size {
            ring.entries.pop_front();
        }
        ring.capacity = size;
    }

    /// How many frames the ring buffer keeps.
    pub fn ringbuffer_size(&self) -> usize {
        self.lock_ring().capacity
    }

    /// Frames added since the stream was made.
    pub fn frames_added(&self) -> u64 {
        self.lock_ring().next_index
    }

    /// Viewers reading the stream now.
    pub fn viewers(&self) -> usize {
        self.shared.viewers.load(Ordering::Relaxed)
    }

    /// All the stream's counters at once.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            frames_added: self.frames_added(),
            viewers: self.viewers(),
            frames_sent: self.shared.frames_sent.load(Ordering::Relaxed),
            frames_skipped: self.shared.frames_skipped.load(Ordering::Relaxed),
        }
    }

    fn lock_ring(&self) -> MutexGuard<'_, Ring> {
        // The lock guards plain data that no code path leaves half-updated, so a panic in
        // another thread while it held the lock does not make the data wrong.
        self.shared
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A tiny valid-looking JPEG whose payload says which producer made it and when.
    fn jpeg(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0xFF, 0xD8];
        frame.extend_from_slice(payload);
        frame.extend_from_slice(&[0xFF, 0xD9]);
        frame
    }

    #[test]
    fn indices_strictly_increase_and_label_the_right_bytes_under_concurrent_producers() {
        let stream = MjpegStream::with_ringbuffer_size(64);
        let threads: Vec<_> = (0..4u8)
            .map(|producer| {
                let stream = stream.clone();
                std::thread::spawn(move || {
                    (0..500u32)
                        .map(|n| {
                            let payload = [&[producer][..], &n.to_be_bytes()].concat();
                            let frame = jpeg(&payload);
                            (stream.add_frame(&frame).unwrap(), frame)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let added: Vec<(u64, Vec<u8>)> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();

        let indices: HashSet<u64> = added.iter().map(|(index, _)| *index).collect();
        assert_eq!(indices.len(), 2000, "every frame got its own index");
        assert_eq!(indices, (0..2000).collect(), "no gaps");
        assert_eq!(stream.frames_added(), 2000);

        // The ring holds the last 64 frames, in index order, each labelled with its own bytes.
        for (index, frame) in &added {
            match stream.entry(*index) {
                Ok(entry) => {
                    assert_eq!(entry.index, *index);
                    assert_eq!(
                        &entry.frame[..],
                        &frame[..],
                        "index {index} labels its bytes"
                    );
                }
                Err(StreamError::Overwritten { oldest, .. }) => assert_eq!(oldest, 2000 - 64),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        let held: Vec<u64> = (1936..2000)
            .map(|i| stream.entry(i).unwrap().index)
            .collect();
        assert_eq!(held, (1936..2000).collect::<Vec<_>>());
        assert_eq!(stream.latest().unwrap().index, 1999);
    }

    #[test]
    fn entry_reports_overwritten_and_not_yet_added() {
        let stream = MjpegStream::with_ringbuffer_size(2);
        assert!(matches!(
            stream.entry(0),
            Err(StreamError::NotYetAdded { index: 0, next: 0 })
        ));
        for _ in 0..3 {
            stream.add_frame(jpeg(b"x")).unwrap();
        }
        assert!(matches!(
            stream.entry(0),
            Err(StreamError::Overwritten {
                index: 0,
                oldest: 1
            })
        ));
        assert_eq!(stream.entry(2).unwrap().index, 2);
        assert!(matches!(
            stream.entry(3),
            Err(StreamError::NotYetAdded { index: 3, next: 3 })
        ));
    }

    #[test]
    fn non_jpeg_frames_are_rejected_and_not_added() {
        let stream = MjpegStream::new();
        let error = stream.add_frame(b"not a jpeg").unwrap_err();
        assert!(matches!(error, StreamError::NotJpeg { len: 10, .. }));
        assert_eq!(stream.frames_added(), 0);
        assert!(stream.latest().is_none());
    }

    #[test]
    fn add_frame_at_keeps_the_capture_time() {
        let stream = MjpegStream::new();
        let captured = DateTime::from_timestamp(1_000_000, 0).unwrap();
        stream.add_frame_at(jpeg(b""), captured).unwrap();
        assert_eq!(stream.latest().unwrap().timestamp, captured);
    }

    #[tokio::test]
    async fn grab_frame_waits_for_a_new_frame() {
        let stream = MjpegStream::new();
        stream.add_frame(jpeg(b"old")).unwrap();
        let waiter = tokio::spawn({
            let stream = stream.clone();
            async move { stream.grab_frame().await }
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the old frame does not count");
        stream.add_frame(jpeg(b"new")).unwrap();
        let entry = waiter.await.unwrap().unwrap();
        assert_eq!(entry.index, 1);
        assert_eq!(&entry.frame[2..5], b"new");
    }

    #[tokio::test]
    async fn next_frame_after_returns_held_frames_at_once_and_skips_overwritten_ones() {
        let stream = MjpegStream::with_ringbuffer_size(3);
        for _ in 0..6 {
            stream.add_frame(jpeg(b"")).unwrap();
        }
        assert_eq!(stream.next_frame_after(3).await.unwrap().index, 4);
        // Frames 1 and 2 are gone; the oldest held one is 3.
        assert_eq!(stream.next_frame_after(0).await.unwrap().index, 3);
        let waiter = tokio::spawn({
            let stream = stream.clone();
            async move { stream.next_frame_after(5).await }
        });
        stream.add_frame(jpeg(b"")).unwrap();
        assert_eq!(waiter.await.unwrap().unwrap().index, 6);
    }

    #[tokio::test]
    async fn stop_wakes_grab_frame_with_stopped() {
        let stream = MjpegStream::new();
        let waiter = tokio::spawn({
            let stream = stream.clone();
            async move { stream.grab_frame().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stream.stop();
        assert!(matches!(waiter.await.unwrap(), Err(StreamError::Stopped)));
    }

    #[test]
    #[should_panic(expected = "room for one frame")]
    fn a_ring_buffer_of_zero_frames_is_refused() {
        let _ = MjpegStream::with_ringbuffer_size(0);
    }
}
