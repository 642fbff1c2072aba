//! What the ready camera Things (`v4l2`, `genicam`) share: their own background thread,
//! started with the server and joined off the async runtime when it stops; and free names for
//! the properties they make at run time from what the device offers.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::Thing;

/// A Thing's background thread (a camera's capture loop).
pub(crate) struct Worker(Mutex<Option<JoinHandle<()>>>);

impl Worker {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Starts the thread, named `name` (as logs and `top` show it).
    pub(crate) fn start(
        &self,
        name: &str,
        run: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(run)?;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        Ok(())
    }

    /// Waits for the thread to end (the caller has told it to), then runs `then` (closing the
    /// device), both on a blocking thread so that the runtime goes on serving meanwhile.
    pub(crate) async fn join_then(&self, then: impl FnOnce() + Send + 'static) {
        let thread = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(thread) = thread {
                let _ = thread.join();
            }
            then();
        })
        .await;
    }
}

/// The names a Thing's own affordances take, and `more`: instance properties must not take
/// them.
pub(crate) fn taken_names<T: Thing>(more: &[&'static str]) -> HashSet<&'static str> {
    T::descriptor()
        .properties
        .iter()
        .map(|property| property.name)
        .chain(more.iter().copied())
        .collect()
}

/// `name`, with `suffix` added until it is not taken and is a valid URL segment.
pub(crate) fn free_name(taken: &HashSet<&'static str>, name: &str, suffix: &str) -> String {
    let mut name = name.to_owned();
    while taken.contains(name.as_str()) || crate::layout::invalid_segment(&name).is_some() {
        name.push_str(suffix);
    }
    name
}
