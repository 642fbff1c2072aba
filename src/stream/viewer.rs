//! One viewer's stream of frames: [`FrameStream`] and its [`ViewerOptions`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use futures_util::stream::{self, BoxStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::RingbufferEntry;
use super::shared::{Latest, Shared};

/// Per-viewer options of a stream; over HTTP they are query parameters of the stream route.
///
/// # Examples
///
/// ```
/// use labthings::stream::ViewerOptions;
///
/// let options = ViewerOptions::from_query("fps=5").unwrap();
/// assert_eq!(options.max_fps, Some(5.0));
/// assert!(ViewerOptions::from_query("fps=fast").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct ViewerOptions {
    /// The highest frame rate this viewer wants (query `fps=`); `None` for every frame the
    /// viewer can take.
    pub max_fps: Option<f64>,
}

/// Why a query string could not be turned into [`ViewerOptions`]; names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{name}` {reason}")]
#[non_exhaustive]
pub struct InvalidViewerOption {
    /// The query parameter that was wrong.
    pub name: String,
    /// What was wrong with it.
    pub reason: String,
}

impl ViewerOptions {
    /// Options with a frame-rate cap.
    ///
    /// A cap that is not a positive, finite number means no cap.
    pub fn with_max_fps(mut self, fps: f64) -> Self {
        self.max_fps = (fps.is_finite() && fps > 0.0).then_some(fps);
        self
    }

    /// Parses the query string of a stream request (`fps=10`).
    ///
    /// # Errors
    ///
    /// [`InvalidViewerOption`] naming the parameter if `fps` is not a positive number, is
    /// given twice, or if the query holds a parameter that streams do not know.
    pub fn from_query(query: &str) -> Result<Self, InvalidViewerOption> {
        /// The lowest frame rate a viewer may ask for: one frame in about 17 minutes.
        const MIN_FPS: f64 = 0.001;
        let mut options = Self::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            // Pages add cache-busters (`?t=1700000000`, `?_=3`) to reconnect an `<img>`;
            // parameters a stream does not know are left alone, as other routes do.
            if name != "fps" {
                continue;
            }
            let invalid = |reason: String| InvalidViewerOption {
                name: name.to_string(),
                reason,
            };
            if options.max_fps.is_some() {
                return Err(invalid("is given more than once".to_owned()));
            }
            let fps = value
                .parse::<f64>()
                .ok()
                .filter(|fps| fps.is_finite() && *fps >= MIN_FPS)
                .ok_or_else(|| {
                    invalid(format!(
                        "must be a number of frames per second of at least {MIN_FPS}, \
                         got `{value}`"
                    ))
                })?;
            options.max_fps = Some(fps);
        }
        Ok(options)
    }

    fn min_interval(&self) -> Option<Duration> {
        self.max_fps
            .map(|fps| Duration::try_from_secs_f64(1.0 / fps).unwrap_or(Duration::MAX))
    }
}

/// The frames of one viewer, as an async [`Stream`] of [`RingbufferEntry`].
///
/// Made by [`MjpegStream::frames`](super::MjpegStream::frames). It yields the newest frame at
/// once (if there is one), then each newer frame as it arrives. It never queues: when it is
/// polled, it yields the newest frame not yet yielded, so a viewer that is slow to poll (because
/// its network connection is slow) skips the frames it had no time for, and its latency stays
/// bounded. With a frame-rate cap, it yields at most one frame per interval, always the newest.
///
/// The stream ends when [`MjpegStream::stop`](super::MjpegStream::stop) is called. Dropping it
/// (a client disconnecting) unregisters the viewer; it is cancel-safe: a frame is never lost
/// half-way, because entries are cloned, not taken.
pub struct FrameStream {
    inner: BoxStream<'static, RingbufferEntry>,
}

impl std::fmt::Debug for FrameStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStream").finish_non_exhaustive()
    }
}

/// The state of one viewer between frames.
struct Viewer {
    latest: watch::Receiver<Latest>,
    generation: u64,
    last_sent: Option<u64>,
    min_interval: Option<Duration>,
    next_due: Option<Instant>,
    registration: Registration,
}

/// Counts a viewer in while it exists; a labelled one (an HTTP viewer) is logged when it
/// connects and disconnects.
struct Registration {
    shared: Arc<Shared>,
    label: Option<Arc<str>>,
    since: Instant,
    sent: u64,
    skipped: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.viewers.fetch_sub(1, Ordering::Relaxed);
        self.shared.demand.notify_waiters();
        if let Some(stream) = &self.label {
            tracing::info!(
                target: "labthings::stream",
                %stream,
                frames_sent = self.sent,
                frames_skipped = self.skipped,
                seconds = self.since.elapsed().as_secs_f64(),
                "stream viewer disconnected"
            );
        }
    }
}

impl FrameStream {
    pub(crate) fn new(
        shared: Arc<Shared>,
        mut latest: watch::Receiver<Latest>,
        options: ViewerOptions,
        label: Option<Arc<str>>,
    ) -> Self {
        let viewers = shared.viewers.fetch_add(1, Ordering::Relaxed) + 1;
        shared.demand.notify_waiters();
        if let Some(stream) = &label {
            tracing::info!(target: "labthings::stream", %stream, viewers, "stream viewer connected");
        }
        let generation = latest.borrow_and_update().generation;
        let viewer = Viewer {
            latest,
            generation,
            last_sent: None,
            min_interval: options.min_interval(),
            next_due: None,
            registration: Registration {
                shared,
                label,
                since: Instant::now(),
                sent: 0,
                skipped: 0,
            },
        };
        Self {
            inner: Box::pin(stream::unfold(viewer, Viewer::next)),
        }
    }
}

impl Viewer {
    async fn next(mut self) -> Option<(RingbufferEntry, Self)> {
        if let Some(due) = self.next_due {
            self.wait_until(due).await?;
        }
        loop {
            {
                let latest = self.latest.borrow_and_update();
                if latest.generation != self.generation {
                    return None;
                }
                if let Some(entry) = &latest.entry
                    && self.last_sent.is_none_or(|sent| entry.index > sent)
                {
                    let entry = entry.clone();
                    drop(latest);
                    self.count(entry.index);
                    return Some((entry, self));
                }
            }
            // The sender lives in `Shared`, which this viewer holds, so this cannot fail.
            self.latest.changed().await.ok()?;
        }
    }

    /// Sleeps until the frame-rate cap allows another frame; `None` if the stream stopped.
    async fn wait_until(&mut self, due: Instant) -> Option<()> {
        let sleep = sleep_until(due);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Some(()),
                changed = self.latest.changed() => {
                    changed.ok()?;
                    if self.latest.borrow().generation != self.generation {
                        return None;
                    }
                }
            }
        }
    }

    fn count(&mut self, index: u64) {
        let registration = &mut self.registration;
        registration
            .shared
            .frames_sent
            .fetch_add(1, Ordering::Relaxed);
        registration.sent += 1;
        if let Some(sent) = self.last_sent {
            let skipped = index - sent - 1;
            if skipped > 0 {
                registration
                    .shared
                    .frames_skipped
                    .fetch_add(skipped, Ordering::Relaxed);
                registration.skipped += skipped;
            }
        }
        self.last_sent = Some(index);
        self.next_due = self.min_interval.map(|interval| Instant::now() + interval);
    }
}

impl Stream for FrameStream {
    type Item = RingbufferEntry;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::MjpegStream;
    use futures_util::StreamExt;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xD9];

    #[tokio::test]
    async fn a_new_viewer_gets_the_latest_frame_at_once() {
        let stream = MjpegStream::new();
        for _ in 0..3 {
            stream.add_frame(JPEG).unwrap();
        }
        let mut frames = stream.frames();
        let first = tokio::time::timeout(Duration::from_secs(1), frames.next())
            .await
            .expect("no waiting for the next frame")
            .unwrap();
        assert_eq!(first.index, 2);
    }

    #[tokio::test]
    async fn a_slow_viewer_skips_to_the_newest_frame_and_the_skip_is_counted() {
        let stream = MjpegStream::new();
        let mut frames = stream.frames();
        stream.add_frame(JPEG).unwrap();
        assert_eq!(frames.next().await.unwrap().index, 0);
        for _ in 0..5 {
            stream.add_frame(JPEG).unwrap();
        }
        assert_eq!(frames.next().await.unwrap().index, 5);
        let stats = stream.stats();
        assert_eq!((stats.frames_sent, stats.frames_skipped), (2, 4));
    }

    #[tokio::test]
    async fn stop_ends_every_viewer_and_viewers_are_counted_out() {
        let stream = MjpegStream::new();
        stream.add_frame(JPEG).unwrap();
        let mut first = stream.frames();
        let mut capped = stream.frames_with(ViewerOptions::default().with_max_fps(0.01));
        assert_eq!(stream.viewers(), 2);
        first.next().await.unwrap();
        capped.next().await.unwrap();
        let both = tokio::spawn(async move { (first.next().await, capped.next().await) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream.stop();
        let (first_end, capped_end) = tokio::time::timeout(Duration::from_secs(5), both)
            .await
            .expect("stop ends streams at once, even one sleeping under a frame-rate cap")
            .unwrap();
        assert!(first_end.is_none() && capped_end.is_none());
        assert_eq!(stream.viewers(), 0);

        // The stream itself goes on for viewers that come later.
        stream.add_frame(JPEG).unwrap();
        assert_eq!(stream.frames().next().await.unwrap().index, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_rate_cap_yields_at_most_one_frame_per_interval() {
        let stream = MjpegStream::new();
        let producer = {
            let stream = stream.clone();
            tokio::spawn(async move {
                // 100 fps for 2 s of (paused, auto-advancing) time.
                for _ in 0..200 {
                    stream.add_frame(JPEG).unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                stream.stop();
            })
        };
        let options = ViewerOptions::from_query("fps=10").unwrap();
        let received: Vec<_> = stream.frames_with(options).collect().await;
        producer.await.unwrap();
        // 2 s at 10 fps: 20 frames, give or take the first and the last.
        assert!(
            (19..=21).contains(&received.len()),
            "got {} frames",
            received.len()
        );
        assert!(received.windows(2).all(|w| w[1].index >= w[0].index + 9));
    }

    #[test]
    fn bad_query_strings_name_the_parameter() {
        for (query, name) in [
            ("fps=0", "fps"),
            ("fps=-2", "fps"),
            ("fps=NaN", "fps"),
            ("fps=inf", "fps"),
            ("fps=", "fps"),
            ("fps=1&fps=2", "fps"),
            ("fps=1e-20", "fps"),
        ] {
            let error = ViewerOptions::from_query(query).unwrap_err();
            assert_eq!(error.name, name, "{query}");
        }
        assert_eq!(
            ViewerOptions::from_query("").unwrap(),
            ViewerOptions::default()
        );
        assert_eq!(
            ViewerOptions::from_query("fps=2.5").unwrap().max_fps,
            Some(2.5)
        );
    }

    #[test]
    fn unknown_parameters_such_as_cache_busters_are_ignored() {
        for query in ["t=1700000000", "_=3", "fps=5&t=1", "quality=9"] {
            assert!(ViewerOptions::from_query(query).is_ok(), "{query}");
        }
        assert_eq!(
            ViewerOptions::from_query("t=1&fps=5").unwrap().max_fps,
            Some(5.0)
        );
    }
}
