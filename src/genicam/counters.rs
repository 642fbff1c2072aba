//! Every GenICam camera's frame counters, for `/metrics`: a file of its own so that the
//! metrics page reads them without depending on the camera Thing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// One camera's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// The camera's id, as `/metrics` labels it.
    pub(crate) camera: String,
    /// Complete frames received.
    pub(crate) frames: AtomicU64,
    /// Buffers that arrived incomplete (lost packets, timeouts, size mismatches).
    pub(crate) incomplete: AtomicU64,
}

static CAMERAS: Mutex<Vec<Weak<Counters>>> = Mutex::new(Vec::new());

/// New counters for `camera`, listed in `/metrics` while they live.
pub(crate) fn register(camera: String) -> Arc<Counters> {
    let counters = Arc::new(Counters {
        camera,
        ..Counters::default()
    });
    let mut cameras = CAMERAS.lock().unwrap_or_else(PoisonError::into_inner);
    cameras.retain(|weak| weak.strong_count() > 0);
    cameras.push(Arc::downgrade(&counters));
    counters
}

/// (camera, frames, incomplete) for each camera alive.
pub(crate) fn all() -> Vec<(String, u64, u64)> {
    let cameras = CAMERAS.lock().unwrap_or_else(PoisonError::into_inner);
    cameras
        .iter()
        .filter_map(Weak::upgrade)
        .map(|c| {
            (
                c.camera.clone(),
                c.frames.load(Ordering::Relaxed),
                c.incomplete.load(Ordering::Relaxed),
            )
        })
        .collect()
}
