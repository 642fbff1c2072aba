//! [`ConnectionOptions`]: the limits and timeouts [`serve`](super::serve()) holds each
//! connection to.

use std::time::Duration;

/// How [`serve`](super::serve()) treats each connection.
///
/// The `connection` key of a configuration file, with durations in seconds and `null` for
/// "no limit" or "the system's default": `{"write_timeout": 10, "max_connections": 2048}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "server",
    schemars(
        description = "Limits and timeouts of each connection; durations in seconds, `null` for no limit or the system's default."
    )
)]
#[serde(default, deny_unknown_fields)]
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
    #[serde(deserialize_with = "seconds::deserialize")]
    #[cfg_attr(feature = "server", schemars(with = "f64", range(min = 0)))]
    pub header_read_timeout: Duration,
    /// How long graceful shutdown waits for open connections before closing them. Default 5 s.
    #[serde(deserialize_with = "seconds::deserialize")]
    #[cfg_attr(feature = "server", schemars(with = "f64", range(min = 0)))]
    pub shutdown_timeout: Duration,
    /// The most connections served at once; `None` for no limit. A connection over the limit
    /// is answered `503 Service Unavailable` (problem JSON, `Retry-After: 1`) and closed, so
    /// the clients already connected keep their share. Websockets count for as long as they
    /// are open, as do streams and Server-Sent Events. Default 1024.
    pub max_connections: Option<usize>,
    /// The most connections one client address may hold at once, counting each HTTP/2 stream
    /// in flight as one more (a stream viewer over HTTP/2 takes a place as one over HTTP/1.1
    /// does); `None` for no limit. Over it, the client's new connection, or new HTTP/2 stream,
    /// is answered `503` as above, so one client (or attacker) cannot take every slot of
    /// [`max_connections`](Self::max_connections). Behind a reverse proxy every client has the
    /// proxy's address: raise it or turn it off there (trusted proxies, the server's
    /// `trusted_proxies`, are not held to it). Default 256.
    pub max_connections_per_client: Option<usize>,
    /// Reverse proxies in front of the server (addresses or networks). Their connections are
    /// not held to [`max_connections_per_client`](Self::max_connections_per_client): every
    /// client behind a proxy has its address. Empty by default.
    #[serde(skip)]
    #[cfg_attr(feature = "server", schemars(skip))]
    pub(crate) proxies: Vec<ipnet::IpNet>,
    /// File descriptors kept for what the server opens besides connections, beyond the
    /// usual spare (recordings' files): the connection limit stays below what remains.
    #[serde(skip)]
    #[cfg_attr(feature = "server", schemars(skip))]
    pub(crate) reserved_files: u64,
    /// How long a request's whole body may take to arrive, from the end of its head. A body
    /// still arriving after this long is answered `408 Request Timeout` (problem JSON) and the
    /// connection closed, so clients that trickle a body cannot hold connections. Applied by
    /// the framework's routes. Default 30 s.
    #[serde(deserialize_with = "seconds::deserialize")]
    #[cfg_attr(feature = "server", schemars(with = "f64", range(min = 0)))]
    pub body_read_timeout: Duration,
    /// How long a write to a client may stay blocked before the connection is closed: a
    /// stream viewer that stops reading is disconnected after this long, instead of holding
    /// its connection (and a slot under [`max_connections`](Self::max_connections)) forever.
    /// The same over HTTPS; over HTTP/2, a stream whose client takes nothing of it for this
    /// long (its flow-control window left shut) is reset alone, and a connection whose socket
    /// takes nothing is closed. Default 30 s.
    #[serde(deserialize_with = "seconds::deserialize")]
    #[cfg_attr(feature = "server", schemars(with = "f64", range(min = 0)))]
    pub write_timeout: Duration,
    /// TCP keepalive: after this long without traffic the system probes the client (every
    /// 10 s, 5 times), so a connection whose client vanished without closing it (a laptop put
    /// to sleep, a pulled cable) is ended even when the server has nothing to write on it, as
    /// with an idle websocket or a paused camera's viewers. `None` leaves the system default
    /// (usually off). Default 60 s.
    #[serde(deserialize_with = "seconds::option::deserialize")]
    #[cfg_attr(feature = "server", schemars(with = "Option<f64>"))]
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
            reserved_files: 0,
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            tcp_keepalive: Some(Duration::from_secs(60)),
        }
    }
}

/// A [`Duration`] as a number of seconds (`0.5`, `300`), in configuration files.
pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected a number of seconds, at least 0, not {seconds}"
            ))
        })
    }

    /// `null` for none.
    pub(crate) mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer};

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Seconds(#[serde(deserialize_with = "super::deserialize")] Duration);
            Ok(Option::<Seconds>::deserialize(deserializer)?.map(|Seconds(duration)| duration))
        }
    }
}
