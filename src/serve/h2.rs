//! What HTTP/2 needs beyond what the socket wrapper ([`StallGuard`](super::stall::StallGuard))
//! gives: over HTTP/2 a client stalls a stream by never reopening its flow-control window, and
//! the socket then sees no blocked write at all. So each stream is watched by itself:
//!
//! - a response body that has handed hyper a frame and is not asked for the next one within
//!   the write timeout (the client takes nothing more) has its stream reset, alone: the
//!   connection's other streams go on;
//! - each stream in flight counts against its client's share
//!   ([`ConnectionOptions::max_connections_per_client`](super::ConnectionOptions::max_connections_per_client)),
//!   beside its connections, so that many streams on few connections cannot take more than
//!   many connections could.
//!
//! hyper runs each HTTP/2 stream as a task of its own, through the executor it is given: the
//! executor here wraps each such task in a [`Watchdog`], which knows its stream's body through
//! a task-local [`Progress`].

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse as _, Response};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::limits::{ClientShare, PerClient, over_share};
use super::service::WithLocalAddr;

tokio::task_local! {
    /// The progress of the stream whose task is being polled.
    static PROGRESS: Arc<Progress>;
}

/// How far a stream's response body has got: whether hyper holds a frame of it not yet
/// taken by the client, and a count of the body's polls to tell one wait from the next.
#[derive(Debug, Default)]
pub(super) struct Progress {
    polls: AtomicU64,
    waiting_for_client: AtomicBool,
}

impl Progress {
    /// The poll count of the wait for the client now under way, if one is.
    fn waiting(&self) -> Option<u64> {
        self.waiting_for_client
            .load(Ordering::Relaxed)
            .then(|| self.polls.load(Ordering::Relaxed))
    }
}

/// The executor of an HTTP/2 connection: spawns each stream's task under a [`Watchdog`].
#[derive(Debug, Clone, Copy)]
pub(super) struct WatchingExecutor {
    pub(super) write_timeout: Duration,
}

impl<F> hyper::rt::Executor<F> for WatchingExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Watchdog {
            task: Box::pin(future),
            progress: Arc::default(),
            timeout: self.write_timeout,
            deadline: Box::pin(tokio::time::sleep(self.write_timeout)),
            armed_for: None,
        });
    }
}

/// Runs one stream's task, and ends it (hyper then resets the stream) once its body has
/// waited on the client for the write timeout.
struct Watchdog<F> {
    task: Pin<Box<F>>,
    progress: Arc<Progress>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The wait the deadline is set for (its poll count).
    armed_for: Option<u64>,
}

impl<F: Future<Output = ()>> Future for Watchdog<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let progress = this.progress.clone();
        if PROGRESS
            .sync_scope(progress, || this.task.as_mut().poll(cx))
            .is_ready()
        {
            return Poll::Ready(());
        }
        let Some(wait) = this.progress.waiting() else {
            this.armed_for = None;
            return Poll::Pending;
        };
        if this.armed_for != Some(wait) {
            this.armed_for = Some(wait);
            this.deadline.as_mut().reset(Instant::now() + this.timeout);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            tracing::info!(
                target: "labthings::http",
                timeout_s = this.timeout.as_secs_f64(),
                "an HTTP/2 stream whose client took nothing for the write timeout is reset"
            );
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// A response body that tells its stream's [`Progress`] when hyper asks it for a frame, and
/// holds its stream's place in its client's share until it ends.
struct Watched {
    body: Body,
    progress: Option<Arc<Progress>>,
    _share: ClientShare,
}

impl hyper::body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Some(progress) = &self.progress {
            progress.polls.fetch_add(1, Ordering::Relaxed);
            progress.waiting_for_client.store(false, Ordering::Relaxed);
        }
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let (Some(progress), Poll::Ready(Some(Ok(frame)))) = (&self.progress, &polled)
            && frame.data_ref().is_some_and(|data| !data.is_empty())
        {
            progress.waiting_for_client.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The service of an HTTP/2 connection: refuses a stream over its client's share with `503`,
/// and watches the bodies of the others.
#[derive(Clone)]
pub(super) struct H2Service {
    pub(super) inner: WithLocalAddr,
    pub(super) per_client: PerClient,
    pub(super) client: IpAddr,
    /// The client's share, or `None` (no limit, or a trusted proxy).
    pub(super) max_per_client: Option<usize>,
}

impl tower_service::Service<axum::http::Request<hyper::body::Incoming>> for H2Service {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<axum::http::Request<hyper::body::Incoming>>::poll_ready(
            &mut self.inner,
            cx,
        )
    }

    fn call(&mut self, request: axum::http::Request<hyper::body::Incoming>) -> Self::Future {
        let Some(share) = ClientShare::take(&self.per_client, self.client, self.max_per_client)
        else {
            let max = self.max_per_client.unwrap_or_default();
            tracing::warn!(client = %self.client, "HTTP/2 stream refused: the client's share");
            let response = crate::Problem::new(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                .with_detail(over_share(max))
                .with_header(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                )
                .into_response();
            return Box::pin(std::future::ready(Ok(response)));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let progress = PROGRESS.try_with(Arc::clone).ok();
            Ok(response.map(|body| {
                Body::new(Watched {
                    body,
                    progress,
                    _share: share,
                })
            }))
        })
    }
}
