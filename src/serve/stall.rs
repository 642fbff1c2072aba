//! A connection wrapper that ends connections whose client stalls: a write the client does
//! not take, or a request head it never finishes (a slow-loris client).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the connection is doing, as far as request heads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Between requests: no byte of the next head has come yet. Idle keep-alive connections
    /// are left to hyper's own header timeout, which closes them without an answer.
    Idle,
    /// Part of a head has come; `tail` says how it ends so far: 1 after a `\r`, 2 after a line
    /// break, 3 after a line break and a `\r` (4, a blank line, ends the head).
    Started { tail: u8 },
    /// The head is complete: the request is being handled (its body may still come).
    Handling,
    /// The connection switched protocols (a websocket): not HTTP any more.
    Upgraded,
}

/// Wraps a connection:
///
/// - a write that stays blocked for `write_timeout` fails with [`io::ErrorKind::TimedOut`],
///   which ends the connection. A client that stops reading (a stalled stream viewer) is then
///   disconnected instead of holding its connection forever;
/// - a request head that is not complete `head_timeout` after its first byte is answered
///   `408 Request Timeout` (problem JSON) and the connection ends.
pub(crate) struct StallGuard<T> {
    inner: T,
    /// `None`: writes are not watched (over TLS they are watched under it, on the socket).
    write_timeout: Option<Duration>,
    /// The deadline of the write now blocked; one timer per connection, reset on each block.
    write_deadline: Pin<Box<Sleep>>,
    /// Whether a write is blocked (the deadline counts).
    write_armed: bool,
    head_timeout: Duration,
    head: Head,
    /// When the head now arriving must be complete (armed while `head` is `Started`).
    head_deadline: Pin<Box<Sleep>>,
}

impl<T> StallGuard<T> {
    pub(crate) fn new(inner: T, write_timeout: Duration, head_timeout: Duration) -> Self {
        Self {
            inner,
            write_timeout: Some(write_timeout),
            write_deadline: Box::pin(tokio::time::sleep(write_timeout)),
            write_armed: false,
            head_timeout,
            head: Head::Idle,
            head_deadline: Box::pin(tokio::time::sleep(head_timeout)),
        }
    }

    /// Watches writes only: for the socket under TLS, whose bytes are not HTTP (request heads
    /// are watched above TLS, with [`heads_only`](Self::heads_only)). Writes must be watched
    /// there, on the socket: TLS takes what the server writes into a buffer of its own even
    /// while the socket takes nothing, which above it would look like progress.
    #[cfg(feature = "tls")]
    pub(crate) fn without_heads(inner: T, write_timeout: Duration) -> Self {
        let mut guard = Self::new(inner, write_timeout, write_timeout);
        guard.head = Head::Upgraded;
        guard
    }

    /// Watches request heads only: HTTP/1.1 above TLS, whose socket is watched for writes.
    #[cfg(feature = "tls")]
    pub(crate) fn heads_only(inner: T, head_timeout: Duration) -> Self {
        let mut guard = Self::new(inner, head_timeout, head_timeout);
        guard.write_timeout = None;
        guard
    }

    /// After a write attempt: disarm on progress; on a block, arm the timer (if not armed)
    /// and fail once it has fired.
    fn check_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if result.is_ready() {
            self.write_armed = false;
            return result;
        }
        let Some(timeout) = self.write_timeout else {
            return result;
        };
        if !self.write_armed {
            self.write_armed = true;
            self.write_deadline.as_mut().reset(Instant::now() + timeout);
        }
        ready!(self.write_deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client took nothing for {timeout:?}"),
        )))
    }

    /// The server is writing `first` (the start of what it writes now): a response has begun,
    /// so the next bytes read start a new head, unless this switches protocols.
    fn on_write(&mut self, first: &[u8]) {
        match self.head {
            Head::Upgraded => {}
            Head::Handling if first.starts_with(b"HTTP/1.1 101") => self.head = Head::Upgraded,
            // An interim answer (`100 Continue`): the request's body comes next, not a head.
            Head::Handling if first.starts_with(b"HTTP/1.1 1") => {}
            _ => self.head = Head::Idle,
        }
    }

    /// Bytes have come in: follows the head they belong to, to its blank line.
    fn on_read(&mut self, bytes: &[u8]) {
        let mut tail = match self.head {
            Head::Idle => {
                if bytes.is_empty() {
                    return;
                }
                let deadline = Instant::now() + self.head_timeout;
                self.head_deadline.as_mut().reset(deadline);
                0
            }
            Head::Started { tail } => tail,
            Head::Handling | Head::Upgraded => return,
        };
        for &byte in bytes {
            // How much of "\r\n\r\n" ends here; a bare "\n\n" ends a head too (hyper's
            // parser takes it).
            tail = match (byte, tail) {
                (b'\r', 2) => 3,
                (b'\r', _) => 1,
                (b'\n', 2 | 3) => 4,
                (b'\n', _) => 2,
                _ => 0,
            };
            if tail == 4 {
                self.head = Head::Handling;
                return;
            }
        }
        self.head = Head::Started { tail };
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> StallGuard<T> {
    /// The head did not come in time: answers 408 (best effort: the answer is small and the
    /// connection idle, so it fits the socket's buffer) and ends the connection.
    fn head_timed_out(&mut self, cx: &mut Context<'_>) -> io::Error {
        let seconds = self.head_timeout.as_secs_f64();
        tracing::warn!(
            target: "labthings::http",
            timeout_s = seconds,
            "request head not complete in time: 408, connection closed"
        );
        let response = crate::Problem::new(axum::http::StatusCode::REQUEST_TIMEOUT)
            .with_detail(format!(
                "The request head was not complete within {seconds} s of its first byte."
            ))
            .to_http1_close();
        let _ = Pin::new(&mut self.inner).poll_write(cx, &response);
        let _ = Pin::new(&mut self.inner).poll_flush(cx);
        self.head = Head::Handling;
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the request head took over {:?}", self.head_timeout),
        )
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let filled = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.on_read(&buf.filled()[filled..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                if matches!(self.head, Head::Started { .. })
                    && self.head_deadline.as_mut().poll(cx).is_ready()
                {
                    let error = self.head_timed_out(cx);
                    return Poll::Ready(Err(error));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.on_write(buf);
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|buf| !buf.is_empty());
        self.on_write(first.map_or(&[][..], |buf| &buf[..]));
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.check_write(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> StallGuard<()> {
        StallGuard {
            inner: (),
            write_timeout: Some(Duration::from_secs(1)),
            write_deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
            write_armed: false,
            head_timeout: Duration::from_secs(1),
            head: Head::Idle,
            head_deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    #[tokio::test]
    async fn heads_are_followed_to_their_blank_line_across_reads() {
        let mut guard = guard();
        guard.on_read(b"");
        assert_eq!(guard.head, Head::Idle, "no byte: still idle");
        guard.on_read(b"GET / HTTP/1.1\r\nHost: x\r");
        assert_eq!(guard.head, Head::Started { tail: 1 });
        guard.on_read(b"\n\r");
        assert_eq!(guard.head, Head::Started { tail: 3 });
        guard.on_read(b"\nbody bytes");
        assert_eq!(guard.head, Head::Handling);
        // Body bytes and reads while handling change nothing; the response starts the next.
        guard.on_read(b"\r\n\r\n more");
        assert_eq!(guard.head, Head::Handling);
        guard.on_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(guard.head, Head::Idle);
        // `100 Continue` is not the response: what follows is the body, not a new head.
        guard.on_read(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        guard.on_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        guard.on_read(b"{\"a\": 1}");
        assert_eq!(guard.head, Head::Handling);
        guard.on_write(b"HTTP/1.1 201 Created\r\n");
        assert_eq!(guard.head, Head::Idle);
        // A bare-LF head, and a line break that is not the end.
        guard.on_read(b"GET / HTTP/1.1\nHost: x\r\r\n");
        assert_eq!(guard.head, Head::Started { tail: 2 });
        guard.on_read(b"\n");
        assert_eq!(guard.head, Head::Handling);
        // A protocol switch ends the tracking for good: websocket frames are not heads.
        guard.on_write(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(guard.head, Head::Upgraded);
        guard.on_read(b"\x81\x05hello");
        guard.on_write(b"\x81\x05hello");
        assert_eq!(guard.head, Head::Upgraded);
    }
}
