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
    pub(crate) frames_sent: AtomicU64,
    pub(crate) frames_skipped: AtomicU64,
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
