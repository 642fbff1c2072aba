//! What connections may hold: the count of open connections, in all and per client address,
//! which lives as long as the socket (so a websocket, handed off by its HTTP connection, still
//! counts), and the open-files limit that decides how many connections are reachable at all.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Descriptors kept for what the process opens besides connections (files, settings, logs).
const SPARE_DESCRIPTORS: u64 = 128;

/// Raises the open-files limit as far as the system allows and gives the connection limit
/// that can really be reached: a limit above what the process may open would never answer
/// its `503`, the clients over it would hang instead. Logs the figures.
pub(super) fn reachable_connections(wanted: Option<usize>, reserved: u64) -> Option<usize> {
    #[cfg(unix)]
    {
        let files = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(files) => files,
            Err(error) => {
                tracing::warn!(%error, "could not read or raise the open-files limit");
                return wanted;
            }
        };
        let possible = usize::try_from(files.saturating_sub(SPARE_DESCRIPTORS + reserved))
            .unwrap_or(usize::MAX);
        match wanted {
            Some(wanted) if wanted > possible => {
                tracing::warn!(
                    max_connections = possible,
                    configured = wanted,
                    open_files_limit = files,
                    "the connection limit is lowered to what the open-files limit allows; \
                     raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) to serve more"
                );
                Some(possible.max(1))
            }
            _ => {
                tracing::debug!(?wanted, open_files_limit = files, "connection limit");
                wanted
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reserved;
        wanted
    }
}

/// Connections open now, by client address.
pub(super) type PerClient = Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>;

pub(super) fn client_connections(per_client: &PerClient, client: IpAddr) -> usize {
    per_client
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&client)
        .copied()
        .unwrap_or(0)
}

/// Counts a connection as open (in all and for its client) while it lives.
pub(super) struct Counted {
    open: Arc<AtomicUsize>,
    /// Held, not read: its place in its client's share, given back with it.
    _share: ClientShare,
}

impl Counted {
    /// Counts a connection already admitted (the limits were checked before accepting it).
    pub(super) fn new(open: &Arc<AtomicUsize>, per_client: &PerClient, client: IpAddr) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self {
            open: open.clone(),
            _share: ClientShare::take(per_client, client, None)
                .expect("a place is always given when there is no limit"),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One place in a client's share (a connection, or an HTTP/2 stream), held while it lives.
pub(super) struct ClientShare {
    per_client: PerClient,
    client: IpAddr,
}

impl ClientShare {
    /// A place for `client`, if it holds fewer than `max` (connections and streams together);
    /// `None`: no limit.
    pub(super) fn take(per_client: &PerClient, client: IpAddr, max: Option<usize>) -> Option<Self> {
        let mut counts = per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = counts.entry(client).or_default();
        if max.is_some_and(|max| *held >= max) {
            return None;
        }
        *held += 1;
        Some(Self {
            per_client: per_client.clone(),
            client,
        })
    }
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// What a client over its share is told (its new connection, or its new HTTP/2 stream).
pub(super) fn over_share(max: usize) -> String {
    format!(
        "Your address holds {max} connections and HTTP/2 streams to this server, its limit per \
         client; end some, or try again shortly."
    )
}

/// A connection's socket with its count: the count lasts as long as the socket, which after
/// an upgrade lives on in the websocket, so open websockets count against the limits too.
pub(super) struct CountedTcp {
    pub(super) tcp: TcpStream,
    /// Held, not read: dropped with the socket.
    pub(super) _counted: Counted,
}

impl AsyncRead for CountedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(context, buffer)
    }
}

impl AsyncWrite for CountedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(context, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(context, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(context)
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_connection_limit_stays_below_the_open_files_limit() {
        let reachable = reachable_connections(Some(usize::MAX), 0).unwrap();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(soft > 0 && soft <= hard);
        assert_eq!(
            reachable as u64,
            soft - SPARE_DESCRIPTORS,
            "lowered to what can be opened"
        );
        assert_eq!(
            reachable_connections(Some(10), 0),
            Some(10),
            "a reachable limit is kept"
        );
        assert_eq!(reachable_connections(None, 0), None);
        assert_eq!(
            reachable_connections(Some(usize::MAX), 12).unwrap(),
            reachable - 12,
            "files kept for recordings are not given to connections"
        );
    }
}
