//! HTTPS for [`serve`](super::serve()): a certificate and key from PEM files, or a self-signed
//! certificate generated once and kept, and the ALPN choice between HTTP/2 and HTTP/1.1.
//!
//! rustls with the *ring* provider does the TLS (no OpenSSL); rcgen makes the self-signed
//! certificate.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::h2::{H2Service, WatchingExecutor};
use super::limits::{CountedTcp, PerClient};
use super::options::ConnectionOptions;
use super::service::{WithLocalAddr, drive};
use super::stall::StallGuard;

/// What [`serve`](super::serve()) needs to speak HTTPS: a certificate chain and its private key.
///
/// Clients that offer HTTP/2 by ALPN (browsers, curl) get it; others get HTTP/1.1. The
/// websocket stays on HTTP/1.1 (browsers open a connection of its own for it).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// // Files from the lab's certificate authority, or from Let's Encrypt:
/// let tls = labthings::serve::TlsCertificate::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
/// // Or a certificate of its own, made on first use and kept in `settings/tls/`:
/// let tls = labthings::serve::TlsCertificate::self_signed("settings/tls".as_ref(), &["microscope.local".into()])?;
/// println!("certificate SHA-256 fingerprint: {}", tls.fingerprint());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsCertificate {
    pub(super) server: Arc<rustls::ServerConfig>,
    /// The same certificate offering HTTP/1.1 only: for answering a connection over the
    /// limits with a plain `503`.
    pub(super) refusal: Arc<rustls::ServerConfig>,
    fingerprint: String,
    /// Where the certificate came from, for the log.
    source: String,
}

impl std::fmt::Debug for TlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The file names of a self-signed certificate and its key, in the folder given.
const SELF_SIGNED_CERT: &str = "cert.pem";
const SELF_SIGNED_KEY: &str = "key.pem";

impl TlsCertificate {
    /// A certificate chain (the server's certificate first) and its private key (PKCS#8,
    /// PKCS#1 or SEC1), from PEM files.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, holds no certificate or no key, or a key that does not
    /// fit the certificate: each names the file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot read {}: {error}", path.display()),
                )
            })
        };
        let mut config = Self::from_pem(&read(cert)?, &read(key)?).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "TLS certificate {} with key {}: {error}",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
        config.source = cert.display().to_string();
        warn_if_readable_by_others(key);
        Ok(config)
    }

    /// A certificate chain and its private key, as PEM text.
    ///
    /// # Errors
    ///
    /// No certificate, no key, or a key that does not fit the certificate.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> io::Result<Self> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid(format!("the certificate is not PEM: {error}")))?;
        if chain.is_empty() {
            return Err(invalid("no certificate (`BEGIN CERTIFICATE`) found".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|error| invalid(format!("no private key found: {error}")))?;
        let fingerprint = fingerprint(&chain[0]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = |alpn: &[&[u8]]| -> io::Result<Arc<rustls::ServerConfig>> {
            let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|error| invalid(error.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|error| invalid(format!("the key does not fit: {error}")))?;
            config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Self {
            server: config(&[b"h2", b"http/1.1"])?,
            refusal: config(&[b"http/1.1"])?,
            fingerprint,
            source: "PEM".into(),
        })
    }

    /// A self-signed certificate kept in `folder` (`cert.pem` and `key.pem`): read if it is
    /// there, made and written there otherwise, so that it stays the same across restarts and
    /// a client told to trust it once keeps trusting it. `names` are the DNS names and IP
    /// addresses it is for; `localhost`, `127.0.0.1` and `::1` are always included.
    ///
    /// # Errors
    ///
    /// The folder cannot be created, the files cannot be written (the server must not start
    /// with a certificate that changes at each restart without saying so), or the files there
    /// are unusable.
    pub fn self_signed(folder: &Path, names: &[String]) -> io::Result<Self> {
        let (cert, key) = (folder.join(SELF_SIGNED_CERT), folder.join(SELF_SIGNED_KEY));
        if cert.exists() || key.exists() {
            let mut config = Self::from_pem_files(&cert, &key)?;
            config.source = format!("self-signed, kept in {}", folder.display());
            return Ok(config);
        }
        let mut subject_names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        for name in names {
            if !name.is_empty() && !subject_names.contains(name) {
                subject_names.push(name.clone());
            }
        }
        let certified = rcgen::generate_simple_self_signed(subject_names)
            .map_err(|error| io::Error::other(format!("cannot make a certificate: {error}")))?;
        let (cert_pem, key_pem) = (certified.cert.pem(), certified.signing_key.serialize_pem());
        std::fs::create_dir_all(folder).map_err(|error| in_folder(folder, &error))?;
        write_new(&key, key_pem.as_bytes(), true).map_err(|error| in_folder(folder, &error))?;
        write_new(&cert, cert_pem.as_bytes(), false).map_err(|error| in_folder(folder, &error))?;
        let mut config = Self::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
        config.source = format!("self-signed, made now and kept in {}", folder.display());
        Ok(config)
    }

    /// The SHA-256 fingerprint of the server's certificate, as browsers show it
    /// (`AB:CD:...`): compare it with what a client is shown before trusting a self-signed
    /// certificate.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where the certificate came from (a file, or self-signed and where it is kept).
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Serving connections over TLS.
pub(super) struct Https {
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
    /// For connections over the limits: HTTP/1.1 only, so they can be answered a plain `503`.
    pub(super) refusal: tokio_rustls::TlsAcceptor,
    http2: hyper::server::conn::http2::Builder<WatchingExecutor>,
    handshake_timeout: Duration,
    write_timeout: Duration,
    head_timeout: Duration,
}

impl Https {
    pub(super) fn new(tls: &TlsCertificate, options: &ConnectionOptions) -> Self {
        // Each stream's task is watched: one whose client takes nothing for the write timeout
        // is reset (see `h2`).
        let mut http2 = hyper::server::conn::http2::Builder::new(WatchingExecutor {
            write_timeout: options.write_timeout,
        });
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
    /// `share` is the client's share of connections and HTTP/2 streams (`None`: no limit).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve(
        &self,
        io: CountedTcp,
        peer: SocketAddr,
        http: http1::Builder,
        service: WithLocalAddr,
        shutdown_rx: watch::Receiver<bool>,
        per_client: PerClient,
        share: Option<usize>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (acceptor, http2) = (self.acceptor.clone(), self.http2.clone());
        let (handshake_timeout, write_timeout, head_timeout) = (
            self.handshake_timeout,
            self.write_timeout,
            self.head_timeout,
        );
        async move {
            let mut io = io;
            // A plain HTTP request on the HTTPS port (a browser or curl given `http://`): a
            // short plain answer naming `https://`, as nginx gives, rather than a dropped
            // connection. A TLS record starts with a byte below 0x20; a request with a letter.
            let mut first = [0u8; 1];
            match tokio::time::timeout(handshake_timeout, io.tcp.peek(&mut first)).await {
                Ok(Ok(1..)) if first[0].is_ascii_alphabetic() => {
                    tracing::debug!(%peer, "plain HTTP on the HTTPS port: answered 400");
                    plain_http_refused(&mut io).await;
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return,
            }
            // Writes are watched on the socket, under TLS (see `StallGuard::without_heads`).
            let io = StallGuard::without_heads(io, write_timeout);
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
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let service = H2Service {
                    inner: service,
                    per_client,
                    client: peer.ip(),
                    max_per_client: share,
                };
                let connection =
                    http2.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                drive!(connection, shutdown_rx, peer).await;
            } else {
                let service = TowerToHyperService::new(service);
                let connection = http
                    .serve_connection(
                        TokioIo::new(StallGuard::heads_only(stream, head_timeout)),
                        service,
                    )
                    .with_upgrades();
                drive!(connection, shutdown_rx, peer).await;
            }
        }
    }
}

/// Says so, as OpenSSH does, when a private key file can be read by other users than its owner:
/// anyone on the machine could then impersonate the server.
fn warn_if_readable_by_others(key: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = std::fs::metadata(key)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                key = %key.display(),
                mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                "the TLS private key can be read by other users of this machine, who could \
                 then pose as this server; make it its owner's alone: chmod 600 {}",
                key.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = key;
}

/// Answers a plain HTTP request that reached the HTTPS port: `400`, saying to use `https://`,
/// then closes (reading what the client sent first, briefly, so that closing does not reset
/// the connection before the answer is read).
async fn plain_http_refused(io: &mut CountedTcp) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const BODY: &str = "This port speaks HTTPS: use https:// in the address.\n";
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), io.read(&mut head)).await;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(answer.as_bytes()).await?;
        io.shutdown().await
    })
    .await;
}

fn in_folder(folder: &Path, error: &io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!(
            "cannot keep a self-signed certificate in {}: {error}",
            folder.display()
        ),
    )
}

/// Writes a new file whole (to a temporary name, then renamed), readable by its owner only
/// when `private`.
fn write_new(path: &PathBuf, contents: &[u8], private: bool) -> io::Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&temporary)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_kept_and_reused() {
        let folder = tempfile::tempdir().unwrap();
        let tls = folder.path().join("tls");
        let first = TlsCertificate::self_signed(&tls, &["scope.lab".into()]).unwrap();
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        assert!(first.source().contains("made now"));
        let again = TlsCertificate::self_signed(&tls, &[]).unwrap();
        assert_eq!(again.fingerprint(), first.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(tls.join(SELF_SIGNED_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the key is its owner's only");
        }
    }

    #[test]
    fn unusable_files_are_named() {
        let folder = tempfile::tempdir().unwrap();
        let cert = folder.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let error =
            TlsCertificate::from_pem_files(&cert, &folder.path().join("key.pem")).unwrap_err();
        assert!(error.to_string().contains("key.pem"), "{error}");
        let key = folder.path().join("key.pem");
        std::fs::write(&key, "nor a key").unwrap();
        let error = TlsCertificate::from_pem_files(&cert, &key).unwrap_err();
        assert!(error.to_string().contains("no certificate"), "{error}");
    }
}
