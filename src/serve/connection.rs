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

use super::limits::{Counted, CountedTcp, PerClient, client_connections, reachable_connections};
use super::stall::StallGuard;

/// How [`serve`] treats each connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// The most bytes hyper buffers for one connection, in each direction (hyper's
    /// `max_buf_size`, at least 8192). Responses are not polled for more data while this much is
    /// waiting to be written, and request heads larger than this are refused with 431.
    /// Default 16 KiB.
    pub max_buf_size: usize,
    /// On Linux, the most bytes the kernel may hold unsent for one connection
    /// (`TCP_NOTSENT_LOWAT`); `None` leaves the system default (unbounded: megabytes).
    /// Default 16 KiB.
    pub not_sent_low_water: Option<u32>,
    /// How long a client may take to send a request head, from its first byte: past it, the
    /// client gets `408 Request Timeout` (problem JSON) and the connection is closed, so
    /// slow-loris clients cannot hold connections. A keep-alive connection that sends no new
    /// request for twice this long is closed without an answer. Default 30 s.
    pub header_read_timeout: Duration,
    /// How long graceful shutdown waits for open connections before closing them. Default 5 s.
    pub shutdown_timeout: Duration,
    /// The most connections served at once; `None` for no limit. A connection over the limit
    /// is answered `503 Service Unavailable` (problem JSON, `Retry-After: 1`) and closed, so
    /// the clients already connected keep their share. Websockets count for as long as they
    /// are open, as do streams and Server-Sent Events. Default 1024.
    pub max_connections: Option<usize>,
    /// The most connections one client address may hold at once; `None` for no limit. Over it,
    /// the client's new connection is answered `503` as above, so one client (or attacker)
    /// cannot take every slot of [`max_connections`](Self::max_connections). Behind a reverse
    /// proxy every client has the proxy's address: raise it or turn it off there. Default 256.
    pub max_connections_per_client: Option<usize>,
    /// Reverse proxies in front of the server (addresses or networks). Their connections are
    /// not held to [`max_connections_per_client`](Self::max_connections_per_client): every
    /// client behind a proxy has its address. Empty by default.
    pub proxies: Vec<ipnet::IpNet>,
    /// How long a request's whole body may take to arrive, from the end of its head. A body
    /// still arriving after this long is answered `408 Request Timeout` (problem JSON) and the
    /// connection closed, so clients that trickle a body cannot hold connections. Applied by
    /// the framework's routes. Default 30 s.
    pub body_read_timeout: Duration,
    /// How long a write to a client may stay blocked before the connection is closed: a
    /// stream viewer that stops reading is disconnected after this long, instead of holding
    /// its connection (and a slot under [`max_connections`](Self::max_connections)) forever.
    /// Default 30 s.
    pub write_timeout: Duration,
    /// TCP keepalive: after this long without traffic the system probes the client (every
    /// 10 s, 5 times), so a connection whose client vanished without closing it (a laptop put
    /// to sleep, a pulled cable) is ended even when the server has nothing to write on it, as
    /// with an idle websocket or a paused camera's viewers. `None` leaves the system default
    /// (usually off). Default 60 s.
    pub tcp_keepalive: Option<Duration>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            max_buf_size: 16 * 1024,
            not_sent_low_water: Some(16 * 1024),
            header_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            max_connections: Some(1024),
            max_connections_per_client: Some(256),
            proxies: Vec::new(),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            tcp_keepalive: Some(Duration::from_secs(60)),
        }
    }
}

/// The local address a request's connection was accepted on, in the request's extensions:
/// which of the host's addresses (and port) the client reached. [`serve`] adds it to every
/// request; the framework uses it to tell whether the server is reachable only from this
/// machine (bound to a loopback address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// The client's address, in each request's extensions: the peer of the TCP connection (behind
/// a reverse proxy, the proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// In a request's extensions when its connection is HTTPS (the `tls` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tls;

/// The router, adding [`LocalAddr`], [`ClientAddr`] and (over HTTPS) [`Tls`] to each request.
#[derive(Clone)]
struct WithLocalAddr {
    router: Router,
    local: LocalAddr,
    client: ClientAddr,
    tls: bool,
}

impl tower_service::Service<axum::http::Request<hyper::body::Incoming>> for WithLocalAddr {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future =
        <Router as tower_service::Service<axum::http::Request<hyper::body::Incoming>>>::Future;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::<axum::http::Request<hyper::body::Incoming>>::poll_ready(
            &mut self.router,
            context,
        )
    }

    fn call(&mut self, mut request: axum::http::Request<hyper::body::Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.local);
        request.extensions_mut().insert(self.client);
        if self.tls {
            request.extensions_mut().insert(Tls);
        }
        self.router.call(request)
    }
}

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
/// labthings::serve(listener, app)
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
    tls: Option<super::tls::TlsConfig>,
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
    pub fn with_tls(mut self, tls: super::tls::TlsConfig) -> Self {
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
        options.max_connections = reachable_connections(options.max_connections);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .max_buf_size(options.max_buf_size.max(8192))
            // The wrapper answers slow heads with a 408 after `header_read_timeout` from their
            // first byte; hyper's own timer (which closes without an answer, and also counts
            // time idle before the first byte) is the backstop for idle connections.
            .header_read_timeout(options.header_read_timeout.saturating_mul(2));
        #[cfg(feature = "tls")]
        let tls = tls.map(|tls| Https::new(&tls, &options));
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
            let over_limit = if let Some(max) = options.max_connections
                && open.load(Ordering::Relaxed) >= max
            {
                tracing::warn!(%peer, "connection refused: at the connection limit");
                Some(format!(
                    "The server is serving its limit of {max} connections; try again shortly."
                ))
            } else if let Some(max) = options.max_connections_per_client
                && !options
                    .proxies
                    .iter()
                    .any(|proxy| proxy.contains(&peer.ip()))
                && client_connections(&per_client, peer.ip()) >= max
            {
                tracing::warn!(%peer, "connection refused: the client's connection limit");
                Some(format!(
                    "Your address holds {max} connections to this server, its limit per client; \
                     close some, or try again shortly."
                ))
            } else {
                None
            };
            if let Some(detail) = over_limit {
                #[cfg(feature = "tls")]
                if let Some(tls) = &tls {
                    let refusal = tls.refusal.clone();
                    tokio::spawn(async move {
                        let patience = Duration::from_secs(1);
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(patience, refusal.accept(tcp)).await
                        {
                            refuse(stream, detail).await;
                        }
                    });
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
                tokio::spawn(tls.serve(io, peer, http.clone(), service, shutdown_rx));
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

/// Runs a hyper connection until it ends, or (gracefully) until shutdown: a macro, because
/// HTTP/1 and HTTP/2 connections share the two methods but no trait.
macro_rules! drive {
    ($connection:expr, $shutdown:expr, $peer:expr) => {{
        let connection = $connection;
        let mut shutdown_rx = $shutdown;
        let peer = $peer;
        async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { drop(shutdown_rx.wait_for(|stop| *stop).await) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(shutdown_rx);
        }
    }};
}
use drive;

/// Serving connections over TLS.
#[cfg(feature = "tls")]
struct Https {
    acceptor: tokio_rustls::TlsAcceptor,
    /// For connections over the limits: HTTP/1.1 only, so they can be answered a plain `503`.
    refusal: tokio_rustls::TlsAcceptor,
    http2: hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor>,
    handshake_timeout: Duration,
    write_timeout: Duration,
    head_timeout: Duration,
}

#[cfg(feature = "tls")]
impl Https {
    fn new(tls: &super::tls::TlsConfig, options: &ConnectionOptions) -> Self {
        let mut http2 =
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            // What hyper buffers for one stream: a stream viewer on a slow link has about one
            // frame queued, as over HTTP/1.1; the other streams of the connection go on.
            .max_send_buf_size(options.max_buf_size.max(8192))
            .max_header_list_size(u32::try_from(options.max_buf_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(256)
            // Websockets over HTTP/2 (RFC 8441's extended CONNECT), which browsers use when
            // the server offers it, instead of a connection of their own.
            .enable_connect_protocol();
        Self {
            acceptor: tokio_rustls::TlsAcceptor::from(tls.server.clone()),
            refusal: tokio_rustls::TlsAcceptor::from(tls.refusal.clone()),
            http2,
            handshake_timeout: options.header_read_timeout,
            write_timeout: options.write_timeout,
            head_timeout: options.header_read_timeout,
        }
    }

    /// The TLS handshake (within the header timeout), then HTTP/2 or HTTP/1.1 as negotiated.
    fn serve(
        &self,
        io: CountedTcp,
        peer: SocketAddr,
        http: http1::Builder,
        service: WithLocalAddr,
        shutdown_rx: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (acceptor, http2) = (self.acceptor.clone(), self.http2.clone());
        let (handshake_timeout, write_timeout, head_timeout) = (
            self.handshake_timeout,
            self.write_timeout,
            self.head_timeout,
        );
        async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not done in time: closed");
                    return;
                }
            };
            let service = TowerToHyperService::new(service);
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let connection = http2.serve_connection(
                    TokioIo::new(StallGuard::without_heads(stream, write_timeout)),
                    service,
                );
                drive!(connection, shutdown_rx, peer).await;
            } else {
                let connection = http
                    .serve_connection(
                        TokioIo::new(StallGuard::new(stream, write_timeout, head_timeout)),
                        service,
                    )
                    .with_upgrades();
                drive!(connection, shutdown_rx, peer).await;
            }
        }
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Answers a connection over the limit with a 503 and closes it. The request head is read
/// first (briefly), so that closing does not reset the connection before the client reads
/// the answer.
async fn refuse<S>(mut tcp: S, detail: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let patience = Duration::from_secs(1);
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(patience, async {
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
    let _ = tokio::time::timeout(patience, async {
        let _ = tcp.write_all(&response).await;
        let _ = tcp.shutdown().await;
        // Let the client read the answer before the socket goes.
        while let Ok(n) = tcp.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
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
    if let Some(low_water) = options.not_sent_low_water {
        if let Err(error) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(low_water) {
            tracing::debug!(%peer, %error, "could not set TCP_NOTSENT_LOWAT");
        }
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
