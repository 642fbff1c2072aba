//! The state one stream's producer and viewers share: the ring buffer, the newest frame that
//! viewers watch, and the counters. Its own file so that the stream ([`super::mjpeg`]) and its
//! viewers ([`super::viewer`]) both use it without using each other in a circle.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use tokio::sync::watch;

use super::RingbufferEntry;

/// Everything about one stream, behind the `Arc` that every handle and viewer holds.
pub(crate) struct Shared {
    pub(super) ring: Mutex<Ring>,
    /// The newest frame and the stop generation; every viewer watches it.
    pub(super) latest: watch::Sender<Latest>,
    pub(crate) viewers: AtomicUsize,
    /// Callers waiting for a frame (`grab_frame`, `next_frame_after`: captures, recordings).
    pub(crate) waiting: AtomicUsize,
    /// Woken whenever `viewers` or `waiting` changes: a producer can pause while unwatched.
    pub(crate) demand: tokio::sync::Notify,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) frames_skipped: AtomicU64,
    /// How many seconds of pre-trigger history are armed (0: none); while armed, the stream
    /// counts as watched, so that its producer keeps its frames coming.
    pub(crate) history_seconds: Mutex<f64>,
    /// The stream's H.264 form, when it offers one.
    #[cfg(feature = "h264")]
    pub(crate) h264: std::sync::OnceLock<super::H264Stream>,
}

impl Shared {
    /// Whether anyone needs frames now: a viewer, or a caller waiting for a frame.
    pub(crate) fn watched(&self) -> bool {
        self.viewers.load(std::sync::atomic::Ordering::Relaxed) > 0
            || self.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
}

/// Counts a caller waiting for a frame for as long as it waits.
pub(crate) struct Waiting<'a>(&'a Shared);

impl<'a> Waiting<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        shared
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.demand.notify_waiters();
        Self(shared)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.0.demand.notify_waiters();
    }
}

/// The frames held, oldest first, and the index the next frame gets.
pub(crate) struct Ring {
    pub(super) entries: VecDeque<RingbufferEntry>,
    pub(super) capacity: usize,
    pub(super) next_index: u64,
}

/// What viewers watch: the newest frame, and how many times the stream has been stopped.
#[derive(Clone, Default)]
pub(crate) struct Latest {
    pub(crate) entry: Option<RingbufferEntry>,
    pub(crate) generation: u64,
}
