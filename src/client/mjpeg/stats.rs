//! What an [`MjpegClient`](super::MjpegClient) counts: frames, bytes, drops, reconnections and rates.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// A snapshot of an [`MjpegClient`](super::MjpegClient)'s counters, from [`MjpegClient::stats`](super::MjpegClient::stats). Its `Display` is
/// one line for a log or a terminal.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MjpegStats {
    /// Whether a stream is being read now.
    pub connected: bool,
    /// Frames per second received over the last two seconds.
    pub fps: f64,
    /// Frame bytes per second received over the last two seconds.
    pub bytes_per_second: f64,
    /// Frames received in all.
    pub frames: u64,
    /// Frame bytes received in all.
    pub bytes: u64,
    /// Frames dropped from the queue because the consumer was behind.
    pub discarded: u64,
    /// Parts skipped for being larger than the maximum frame size.
    pub too_large: u64,
    /// Frames the server skipped for this client: gaps in its `X-Frame-Index`.
    pub server_skipped: u64,
    /// Reconnection attempts.
    pub reconnects: u64,
    /// Frames waiting in the queue.
    pub queued: usize,
    /// The error that ended the last connection, if one did.
    pub last_error: Option<String>,
}

impl fmt::Display for MjpegStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:.1} fps, {:.2} Mbit/s, {} frames ({:.1} MB), {} discarded, {} too large, \
             {} skipped by the server, {} reconnects",
            if self.connected {
                "connected"
            } else {
                "disconnected"
            },
            self.fps,
            self.bytes_per_second * 8.0 / 1e6,
            self.frames,
            self.bytes as f64 / 1e6,
            self.discarded,
            self.too_large,
            self.server_skipped,
            self.reconnects,
        )?;
        if let Some(error) = &self.last_error {
            write!(f, "; last error: {error}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) connected: bool,
    pub(super) frames: u64,
    pub(super) bytes: u64,
    pub(super) discarded: u64,
    pub(super) too_large: u64,
    pub(super) server_skipped: u64,
    pub(super) reconnects: u64,
    pub(super) last_error: Option<String>,
    pub(super) last_index: Option<u64>,
    /// Arrival time and size of the frames of the last two seconds.
    pub(super) recent: VecDeque<(Instant, usize)>,
}

/// The window over which rates are measured.
pub(super) const RATE_WINDOW: Duration = Duration::from_secs(2);

impl Counters {
    pub(super) fn prune(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    pub(super) fn snapshot(&self, queued: usize) -> MjpegStats {
        let now = Instant::now();
        let recent: Vec<_> = self
            .recent
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= RATE_WINDOW)
            .collect();
        let (fps, bytes_per_second) = match (recent.first(), recent.last()) {
            (Some(first), Some(last)) if recent.len() > 1 => {
                let span = last.0.duration_since(first.0).as_secs_f64().max(1e-6);
                let bytes: usize = recent[1..].iter().map(|(_, size)| size).sum();
                ((recent.len() - 1) as f64 / span, bytes as f64 / span)
            }
            _ => (0.0, 0.0),
        };
        MjpegStats {
            connected: self.connected,
            fps,
            bytes_per_second,
            frames: self.frames,
            bytes: self.bytes,
            discarded: self.discarded,
            too_large: self.too_large,
            server_skipped: self.server_skipped,
            reconnects: self.reconnects,
            queued,
            last_error: self.last_error.clone(),
        }
    }
}
