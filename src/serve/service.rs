//! What every connection serves: the router, with each request told where it came from
//! ([`LocalAddr`], [`ClientAddr`], [`TlsConnection`]); and the loop that drives a hyper connection to its
//! end or to a graceful shutdown, for HTTP/1 and HTTP/2 alike.

use std::net::SocketAddr;

use axum::Router;

/// The local address a request's connection was accepted on, in the request's extensions:
/// which of the host's addresses (and port) the client reached. [`serve`](super::serve()) adds it to every
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
pub struct TlsConnection;

/// The router, adding [`LocalAddr`], [`ClientAddr`] and (over HTTPS) [`TlsConnection`] to each request.
#[derive(Clone)]
pub(super) struct WithLocalAddr {
    pub(super) router: Router,
    pub(super) local: LocalAddr,
    pub(super) client: ClientAddr,
    pub(super) tls: bool,
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
            request.extensions_mut().insert(TlsConnection);
        }
        self.router.call(request)
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
pub(super) use drive;
