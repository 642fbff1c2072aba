//! Serving a router over HTTP/1.1 with the connection limits that keep live streams live.
//!
//! [`serve`] is like `axum::serve`, with two differences that matter for MJPEG streams:
//!
//! - It caps what each connection may queue: hyper's write buffer is limited
//!   ([`ConnectionOptions::max_buf_size`]) and, on Linux, so are the bytes the kernel holds
//!   unsent (`TCP_NOTSENT_LOWAT`, [`ConnectionOptions::not_sent_low_water`]). A viewer on a slow
//!   link then has at most about one frame queued for it, and is sent the newest frame each
//!   time it can take one, instead of frames many seconds old.
//! - Graceful shutdown has a deadline ([`ConnectionOptions::shutdown_timeout`]): live streams
//!   never end by themselves, so connections still open at the deadline are closed.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::limits::{
    Counted, CountedTcp, PerClient, client_connections, over_share, reachable_connections,
};
use super::options::ConnectionOptions;
use super::service::{ClientAddr, LocalAddr, WithLocalAddr, drive};
use super::stall::StallGuard;

/// Serves `router` on `listener` until the shutdown signal, if one is set.
///
/// Await the returned [`Serve`] to run the server; set a shutdown signal with
/// [`Serve::with_graceful_shutdown`].
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let app = axum::Router::new();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
/// labthings::serve::serve(listener, app)
///     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
///     .await
/// # }
/// ```
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        options: ConnectionOptions::default(),
        shutdown: Box::pin(std::future::pending()),
        #[cfg(feature = "tls")]
        tls: None,
    }
}

/// A server being set up by [`serve`]; await it to run it.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listener: TcpListener,
    router: Router,
    options: ConnectionOptions,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsCertificate>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Serve {
    /// Stops accepting connections when `signal` completes, lets open requests finish (up to
    /// [`ConnectionOptions::shutdown_timeout`]), then returns.
    ///
    /// Live streams do not finish by themselves: stop them
    /// ([`MjpegStream::stop`](crate::stream::MjpegStream::stop)) when the signal fires, so
    /// their viewers get a clean end instead of a cut connection.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shutdown = Box::pin(signal);
        self
    }

    /// Replaces the connection options.
    pub fn with_options(mut self, options: ConnectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Serves HTTPS instead of plain HTTP: HTTP/2 to clients that offer it by ALPN, HTTP/1.1 to
    /// the others. Every limit and timeout applies as over plain HTTP; the TLS handshake must
    /// end within [`ConnectionOptions::header_read_timeout`].
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: super::tls::TlsCertificate) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The address the server listens on (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    async fn run(self) -> io::Result<()> {
        let Self {
            listener,
            router,
            mut options,
            mut shutdown,
            #[cfg(feature = "tls")]
            tls,
        } = self;
        options.max_connections =
            reachable_connections(options.max_connections, options.reserved_files);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .max_buf_size(options.max_buf_size.max(8192))
            // The wrapper answers slow heads with a 408 after `header_read_timeout` from their
            // first byte; hyper's own timer (which closes without an answer, and also counts
            // time idle before the first byte) is the backstop for idle connections.
            .header_read_timeout(options.header_read_timeout.saturating_mul(2));
        #[cfg(feature = "tls")]
        let tls = tls.map(|tls| super::tls::Https::new(&tls, &options));
        // Every connection holds a receiver; the sender tells them to shut down and, through
        // `closed`, learns when the last one has gone.
        let (shutting_down, shutdown_rx) = watch::channel(false);
        let open = Arc::new(AtomicUsize::new(0));
        let per_client: PerClient = Arc::default();
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // The client's share of connections and HTTP/2 streams; none for a trusted proxy,
            // whose connections carry every client behind it.
            let share = options.max_connections_per_client.filter(|_| {
                !options
                    .proxies
                    .iter()
                    .any(|proxy| proxy.contains(&peer.ip()))
            });
            let over_limit = if let Some(max) = options.max_connections
                && open.load(Ordering::Relaxed) >= max
            {
                tracing::warn!(%peer, "connection refused: at the connection limit");
                Some(format!(
                    "The server is serving its limit of {max} connections; try again shortly."
                ))
            } else if let Some(max) = share
                && client_connections(&per_client, peer.ip()) >= max
            {
                tracing::warn!(%peer, "connection refused: the client's connection limit");
                Some(over_share(max))
            } else {
                None
            };
            if let Some(detail) = over_limit {
                #[cfg(feature = "tls")]
                if let Some(tls) = &tls {
                    tokio::spawn(refuse_tls(tls.refusal.clone(), tcp, detail));
                    continue;
                }
                tokio::spawn(refuse(tcp, detail));
                continue;
            }
            let counted = Counted::new(&open, &per_client, peer.ip());
            configure_socket(&tcp, &options, peer);
            // Each request learns which of the host's addresses it arrived on.
            let local = LocalAddr(tcp.local_addr().unwrap_or_else(|_| {
                listener
                    .local_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
            }));
            let io = CountedTcp {
                tcp,
                _counted: counted,
            };
            let service = WithLocalAddr {
                router: router.clone(),
                local,
                client: ClientAddr(peer),
                tls: false,
            };
            let shutdown_rx = shutdown_rx.clone();
            #[cfg(feature = "tls")]
            if let Some(tls) = &tls {
                let service = WithLocalAddr {
                    tls: true,
                    ..service
                };
                tokio::spawn(tls.serve(
                    io,
                    peer,
                    http.clone(),
                    service,
                    shutdown_rx,
                    per_client.clone(),
                    share,
                ));
                continue;
            }
            let connection = http
                .serve_connection(
                    TokioIo::new(StallGuard::new(
                        io,
                        options.write_timeout,
                        options.header_read_timeout,
                    )),
                    TowerToHyperService::new(service),
                )
                .with_upgrades();
            tokio::spawn(drive!(connection, shutdown_rx, peer));
        }
        drop(listener);
        drop(shutdown_rx);
        let _ = shutting_down.send(true);
        if tokio::time::timeout(options.shutdown_timeout, shutting_down.closed())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shutting_down.receiver_count(),
                "connections still open after the shutdown timeout are closed"
            );
        }
        Ok(())
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// How long a connection over the limits is given, in all (its TLS handshake included), to be
/// answered `503` and closed: a client that sends nothing, or reads nothing, holds its file
/// descriptor no longer than this, so a burst at the limit is answered quickly.
const REFUSAL_PATIENCE: Duration = Duration::from_millis(750);
/// Of that, how long the request head may take: the answer is written after it, or without it.
const REFUSAL_HEAD_PATIENCE: Duration = Duration::from_millis(250);

/// Answers a connection over the limit with a 503 and closes it, within [`REFUSAL_PATIENCE`].
async fn refuse<S>(tcp: S, detail: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(REFUSAL_PATIENCE, answer_refusal(tcp, detail)).await;
}

/// The same over TLS: the handshake and the answer within [`REFUSAL_PATIENCE`].
#[cfg(feature = "tls")]
async fn refuse_tls(acceptor: tokio_rustls::TlsAcceptor, tcp: TcpStream, detail: String) {
    let _ = tokio::time::timeout(REFUSAL_PATIENCE, async move {
        if let Ok(stream) = acceptor.accept(tcp).await {
            answer_refusal(stream, detail).await;
        }
    })
    .await;
}

/// Writes the `503` and closes. The request head is read first (briefly), so that closing does
/// not reset the connection before the client reads the answer; then what the client still
/// sends is read until it closes its side.
async fn answer_refusal<S>(mut tcp: S, detail: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_HEAD_PATIENCE, async {
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    let response = crate::Problem::new(axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .with_detail(detail)
        .with_header(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        )
        .to_http1_close();
    if tcp.write_all(&response).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    // Let the client read the answer before the socket goes.
    while let Ok(n) = tcp.read(&mut buffer).await {
        if n == 0 {
            break;
        }
    }
}

fn configure_socket(tcp: &TcpStream, options: &ConnectionOptions, peer: SocketAddr) {
    // Frames must leave as soon as they are written; Nagle's algorithm would hold back the tail
    // of a frame until the previous one is acknowledged.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    if let Some(idle) = options.tcp_keepalive {
        let keepalive = socket2::TcpKeepalive::new().with_time(idle);
        #[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
        let keepalive = keepalive.with_interval(Duration::from_secs(10));
        #[cfg(any(target_os = "linux", target_os = "macos"))]
        let keepalive = keepalive.with_retries(5);
        if let Err(error) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
            tracing::debug!(%peer, %error, "could not set TCP keepalive");
        }
    }
    #[cfg(target_os = "linux")]
    if let Some(low_water) = options.not_sent_low_water
        && let Err(error) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(low_water)
    {
        tracing::debug!(%peer, %error, "could not set TCP_NOTSENT_LOWAT");
    }
}

/// Errors from `accept` that concern one connection are skipped; others (such as running out
/// of file descriptors) are logged and retried after a pause, so the server does not spin.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_answered_at_once_and_spends_under_a_second_on_a_client_that_reads_nothing()
     {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // A client that sends its request and reads the answer gets the 503, as problem JSON.
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let refusal = tokio::spawn(refuse(server, "The server is full.".into()));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1") || answer.contains("Retry-After: 1"));
        assert!(answer.contains("The server is full."), "{answer}");
        refusal.await.unwrap();
        // One that sends nothing and reads nothing (the answer does not fit what the socket
        // holds) costs less than a second (of the paused clock: no load makes this vary).
        let (client, server) = tokio::io::duplex(64);
        let started = tokio::time::Instant::now();
        refuse(server, "The server is full.".into()).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        drop(client);
    }

    #[tokio::test]
    async fn accepted_sockets_get_keepalive_and_no_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let (accepted, peer) = listener.accept().await.unwrap();
        configure_socket(&accepted, &ConnectionOptions::default(), peer);
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.tcp_nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                socket.tcp_keepalive_time().unwrap(),
                Duration::from_secs(60)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(10)
            );
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 5);
        }
    }
}
