//! On a lab network: HTTPS (a given certificate and self-signed), HTTP/2 by ALPN beside
//! HTTP/1.1, a stalled HTTP/2 viewer, forwarded headers from trusted proxies only, and
//! `/.well-known/wot`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use labthings::serve::{ConnectionOptions, TlsCertificate};
use labthings::server::{ServerConfig, TlsOptions};
use serde_json::{Value, json};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;

use crate::support::{Captured, json_of, spawn_thing_server};

/// A self-signed certificate and key in `folder` (made by the library, as `--self-signed`
/// would), for tests that give the server files.
fn certificate_files(folder: &Path) -> (PathBuf, PathBuf) {
    TlsCertificate::self_signed(folder, &[]).unwrap();
    (folder.join("cert.pem"), folder.join("key.pem"))
}

/// The microscope with this configuration (JSON, merged over the built-in one), served on a
/// free port; the server stops when the returned sender is dropped.
async fn microscope(extra: Value) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    microscope_with(extra, ConnectionOptions::default()).await
}

/// The same, with these connection options.
async fn microscope_with(
    extra: Value,
    options: ConnectionOptions,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut config: Value = serde_json::from_str(crate::example_things::MICROSCOPE_CONFIG).unwrap();
    config["settings_folder"] = Value::Null;
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    let config = ServerConfig::from_json(&config.to_string()).unwrap();
    Captured::start();
    let server = crate::example_things::registry()
        .builder(&config)
        .unwrap()
        .connection(options)
        .build()
        .unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    (address, stop)
}

/// A reqwest client that trusts `cert` (PEM); `http1` keeps it to HTTP/1.1.
fn https_client(cert: &Path, http1: bool) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
    let builder = reqwest::Client::builder()
        .add_root_certificate(root)
        .tls_built_in_root_certs(false)
        .use_rustls_tls();
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

#[tokio::test]
async fn https_with_given_files_speaks_http2_to_those_who_offer_it_and_http1_to_the_rest() {
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let (address, _stop) = microscope(json!({"tls": {"cert": cert, "key": key}})).await;
    let url = format!("https://localhost:{}", address.port());

    let h2 = https_client(&cert, false);
    let response = h2.get(format!("{url}/stage/")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    let td: Value = response.json().await.unwrap();
    assert_eq!(td["base"], format!("{url}/"), "links are https");
    let websocket = td["forms"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|form| form["href"].as_str().filter(|href| href.starts_with("ws")))
        .map(str::to_owned);
    if let Some(href) = websocket {
        assert!(href.starts_with("wss://"), "{href}");
    }

    let h1 = https_client(&cert, true);
    let response = h1
        .get(format!("{url}/stage/position"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
    // A write and an action, over HTTP/2, with the invocation's link on https.
    let response = h2
        .post(format!("{url}/stage/move_to"))
        .json(&json!({"x": 5, "y": 0, "z": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{url}/action_invocations/")),
        "{location}"
    );

    // Plain HTTP on the HTTPS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/stage/", address.port()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn a_self_signed_certificate_is_made_once_kept_in_the_settings_folder_and_reused() {
    let folder = tempfile::tempdir().unwrap();
    let settings = folder.path().join("settings");
    let build = || {
        crate::support::builder()
            .settings_folder(&settings)
            .tls(TlsOptions::self_signed())
            .build()
            .unwrap()
    };
    let first = build();
    let fingerprint = first.tls_fingerprint().unwrap().to_owned();
    assert_eq!(first.scheme(), "https");
    let cert = settings.join("tls").join("cert.pem");
    assert!(cert.exists());
    // A restart: the first server is gone (it holds its settings folder while it lives).
    drop(first);
    let again = build();
    assert_eq!(
        again.tls_fingerprint(),
        Some(fingerprint.as_str()),
        "the same after a restart"
    );

    // And it is what the server presents.
    let (address, _stop, _task) = spawn_thing_server(again).await;
    let response = https_client(&cert, false)
        .get(format!("https://localhost:{}/things/", address.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Without a settings folder there is nowhere to keep it: a clear error, not a new
    // certificate at each start.
    let error = crate::support::builder()
        .tls(TlsOptions::self_signed())
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("settings folder"), "{error}");
    let error = crate::support::builder()
        .tls(TlsOptions::files(
            folder.path().join("none.pem"),
            folder.path().join("no.key"),
        ))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("none.pem"), "{error}");
}

/// A TLS connection to the server offering `alpn`, from a socket with a 4 KB receive buffer,
/// whose reading can be stopped (with the flag): a client that stops taking what the server
/// writes.
async fn tls_connection(
    address: SocketAddr,
    cert: &Path,
    alpn: &[u8],
) -> (tokio_rustls::client::TlsStream<Pausable>, Arc<Pause>) {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(cert).unwrap();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(address).await.unwrap();
    let paused = Arc::new(Pause::default());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            "localhost".try_into().unwrap(),
            Pausable {
                tcp,
                paused: paused.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    (tls, paused)
}

/// A socket whose reads stop while `paused` says so (writes go on).
struct Pausable {
    tcp: tokio::net::TcpStream,
    paused: Arc<Pause>,
}

/// Whether a [`Pausable`] reads, and the reader to wake when it may again.
#[derive(Default)]
struct Pause {
    paused: std::sync::atomic::AtomicBool,
    waiting: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Pause {
    fn set(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        if !paused && let Some(waker) = self.waiting.lock().unwrap().take() {
            waker.wake();
        }
    }
}

impl tokio::io::AsyncRead for Pausable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.paused.paused.load(std::sync::atomic::Ordering::SeqCst) {
            *self.paused.waiting.lock().unwrap() = Some(cx.waker().clone());
            if self.paused.paused.load(std::sync::atomic::Ordering::SeqCst) {
                return std::task::Poll::Pending;
            }
        }
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Pausable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// One TLS connection speaking HTTP/2, with this flow-control window for each stream (a
/// small one makes a stream whose body is not read stall at once). Setting the flag stops the
/// client reading the socket.
async fn h2_connection_pausable(
    address: SocketAddr,
    cert: &Path,
    window: u32,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    Arc<Pause>,
) {
    let (tls, paused) = tls_connection(address, cert, b"h2").await;
    let (send, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(window)
            .initial_connection_window_size(window.max(1 << 20))
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    (send, paused)
}

/// One TLS connection speaking HTTP/2, with a small flow-control window.
async fn h2_connection(
    address: SocketAddr,
    cert: &Path,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    h2_connection_pausable(address, cert, 16 * 1024).await.0
}

/// Viewers of the microscope's `mjpeg_stream` now, from its metrics.
async fn viewers(http: &reqwest::Client, base: &str) -> f64 {
    crate::support::sample(
        &crate::support::metrics_text(http, base).await,
        r#"labthings_stream_viewers{thing="camera",stream="mjpeg_stream"}"#,
    )
}

#[tokio::test]
async fn over_https_a_viewer_that_stops_reading_is_disconnected_after_the_write_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let mut options = ConnectionOptions::default();
    options.write_timeout = Duration::from_secs(2);
    let (address, _stop) =
        microscope_with(json!({"tls": {"cert": cert, "key": key}}), options).await;
    let base = format!("https://localhost:{}", address.port());
    let http = https_client(&cert, true);

    // HTTP/1.1 over TLS: the stream is asked for, then nothing more is read.
    let (mut h1, paused) = tls_connection(address, &cert, b"http/1.1").await;
    h1.write_all(b"GET /camera/mjpeg_stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    h1.flush().await.unwrap();
    paused.set(true);
    // HTTP/2: four streams whose windows are never opened again (the client reads the socket,
    // so only HTTP/2's flow control holds them)...
    let (mut send, _) = h2_connection_pausable(address, &cert, 16 * 1024).await;
    let request = || {
        hyper::Request::get(format!("{base}/camera/mjpeg_stream"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let mut stalled = Vec::new();
    for _ in 0..4 {
        send.ready().await.unwrap();
        stalled.push(send.send_request(request()).await.unwrap());
    }
    // ...and a connection whose client stops reading the socket altogether (its windows are
    // wide: the server writes until the socket is full).
    let (mut deaf, deaf_paused) = h2_connection_pausable(address, &cert, 8 << 20).await;
    deaf.ready().await.unwrap();
    let deaf_stream = deaf.send_request(request()).await.unwrap();
    deaf_paused.set(true);
    crate::support::eventually_async(|| async { viewers(&http, &base).await == 6.0 }).await;

    // Each is freed once its writes have made no progress for the write timeout.
    crate::support::eventually_async(|| async { viewers(&http, &base).await == 0.0 }).await;
    // The stalled HTTP/2 streams were reset: their bodies end with an error.
    for response in stalled {
        let mut body = response.into_body();
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match body.frame().await {
                    Some(Ok(_)) => {}
                    Some(Err(_)) => return true,
                    None => return false,
                }
            }
        })
        .await
        .expect("the stalled stream was reset");
        assert!(ended, "a reset, not a clean end");
    }
    // The first connection's socket, read at last, ends (the server closed it).
    paused.set(false);
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let tcp = &mut h1.get_mut().0.tcp;
        tcp.read_to_end(&mut sink).await
    })
    .await;
    assert!(
        read.is_ok(),
        "the server closed the stalled HTTPS connection"
    );
    // So was the deaf HTTP/2 connection: once its client reads again, it finds the end.
    deaf_paused.set(false);
    drop(deaf_stream);
    crate::support::eventually(|| deaf.is_closed()).await;
    // The HTTP/2 connection whose streams were reset still serves.
    send.ready().await.unwrap();
    let response = send
        .send_request(
            hyper::Request::get(format!("{base}/camera/"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn http2_streams_count_against_the_clients_share_beside_its_connections() {
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let mut options = ConnectionOptions::default();
    options.max_connections_per_client = Some(6);
    let (address, _stop) =
        microscope_with(json!({"tls": {"cert": cert, "key": key}}), options).await;
    let url = format!("https://localhost:{}/camera/mjpeg_stream", address.port());
    let request = || {
        hyper::Request::get(&url)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    // One connection and five stream viewers on it: the client's six.
    let mut send = h2_connection(address, &cert).await;
    let mut viewers = Vec::new();
    for _ in 0..5 {
        send.ready().await.unwrap();
        let response = send.send_request(request()).await.unwrap();
        assert_eq!(response.status(), 200);
        viewers.push(response);
    }
    // A sixth stream is refused, on its own: 503 with Retry-After, as problem JSON.
    send.ready().await.unwrap();
    let refused = send.send_request(request()).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem: Value =
        serde_json::from_slice(&refused.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP/2 streams"),
        "{problem}"
    );
    // So is another connection from the same address.
    let response = https_client(&cert, true)
        .get(format!("https://localhost:{}/things/", address.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    // A stream that ends gives its place back.
    drop(viewers.pop());
    crate::support::eventually_async(|| {
        let mut send = send.clone();
        let request = request();
        async move {
            send.ready().await.unwrap();
            send.send_request(request).await.unwrap().status() == 200
        }
    })
    .await;
}

#[tokio::test]
async fn a_stalled_http2_viewer_delays_neither_another_stream_on_its_connection_nor_others() {
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let (address, stop) = microscope(json!({"tls": {"cert": cert, "key": key}})).await;
    let stream_url = format!("https://localhost:{}/camera/mjpeg_stream", address.port());
    let mut send = h2_connection(address, &cert).await;
    let request = || {
        hyper::Request::get(&stream_url)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    // Stream 1: opened, never read.
    send.ready().await.unwrap();
    let stalled = send.send_request(request()).await.unwrap();
    assert_eq!(stalled.status(), 200);
    // Stream 2, on the same connection: frames keep coming.
    send.ready().await.unwrap();
    let live = send.send_request(request()).await.unwrap();
    let mut body = live.into_body();
    let mut received = 0usize;
    let mut boundaries = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while boundaries < 20 {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the live stream stalled behind the stalled one")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            received += data.len();
            boundaries += memchr::memmem::find_iter(&data, b"--frame").count();
        }
    }
    assert!(
        received > 16 * 1024,
        "well past the stalled stream's window"
    );
    // Another connection (HTTP/1.1) is served as well.
    let response = https_client(&cert, true)
        .get(&stream_url)
        .send()
        .await
        .unwrap();
    let mut reader = crate::support::MjpegReader::new(response);
    for _ in 0..3 {
        assert!(reader.next_part(Duration::from_secs(10)).await.is_some());
    }
    // Graceful shutdown ends the HTTP/2 streams too (the server stops its streams first).
    drop(stop);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the HTTP/2 stream outlived the server's shutdown"
    );
    drop(stalled);
}

#[tokio::test]
async fn forwarded_headers_set_every_link_from_a_trusted_proxy_and_are_ignored_from_others() {
    let (address, _stop) = microscope(json!({"trusted_proxies": ["127.0.0.1"]})).await;
    let http = reqwest::Client::new();
    let forwarded = |request: reqwest::RequestBuilder| {
        request
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "lab.example")
            .header("x-forwarded-prefix", "/lab/")
    };
    let base = format!("http://{address}");
    let td = json_of(forwarded(http.get(format!("{base}/stage/")))).await;
    assert_eq!(td["base"], "https://lab.example/lab/");
    let response = forwarded(http.post(format!("{base}/stage/move_to")))
        .json(&json!({"x": 1, "y": 1, "z": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://lab.example/lab/action_invocations/"),
        "{location}"
    );
    let index = json_of(forwarded(http.get(format!("{base}/things/")))).await;
    assert_eq!(index["camera"], "https://lab.example/lab/camera/");
    // The standard header does the same.
    let td = json_of(
        http.get(format!("{base}/camera/"))
            .header("forwarded", "for=10.0.0.9;proto=https;host=scope.lab"),
    )
    .await;
    assert_eq!(td["base"], "https://scope.lab/");
    // A page of the proxied origin may write (its Origin is the server's own as published).
    let response = forwarded(http.put(format!("{base}/camera/gain")))
        .header("origin", "https://lab.example")
        .json(&2.0)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    // A server that trusts no proxy ignores the same headers.
    let (untrusting, _stop) = microscope(json!({})).await;
    let td = json_of(forwarded(http.get(format!("http://{untrusting}/stage/")))).await;
    assert_eq!(td["base"], format!("http://{untrusting}/"));
    let response = forwarded(http.put(format!("http://{untrusting}/camera/gain")))
        .header("origin", "https://lab.example")
        .json(&2.0)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a page of another site, as far as it knows"
    );

    // A trusted proxy that is not an address is refused at build.
    let error = crate::support::builder()
        .trusted_proxies(["proxy.lab"])
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("proxy.lab"), "{error}");
}

#[tokio::test]
async fn the_well_known_wot_description_links_to_every_thing_and_is_a_valid_td() {
    let (address, _stop) = microscope(json!({})).await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!("http://{address}/.well-known/wot"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/td+json");
    let td: Value = response.json().await.unwrap();
    assert_eq!(td["title"], "Simulated microscope");
    crate::documents::assert_valid_td("/.well-known/wot", &td);
    let links = td["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    for link in links {
        assert_eq!(link["rel"], "item");
        assert_eq!(link["type"], "application/td+json");
        let url = format!(
            "{}{}",
            td["base"].as_str().unwrap(),
            link["href"].as_str().unwrap()
        );
        let thing: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(thing["title"], link["title"]);
        crate::documents::assert_valid_td(link["title"].as_str().unwrap(), &thing);
    }
}

/// An mDNS query from an ordinary port ("legacy unicast", RFC 6762 6.7), sent to the group on
/// the loopback interface only; the answer comes back to that port.
async fn ask_mdns(name: &str, qtype: simple_dns::TYPE) -> Vec<u8> {
    use simple_dns::{Name, Packet, QCLASS, Question};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket2::SockRef::from(&socket)
        .set_multicast_if_v4(&std::net::Ipv4Addr::LOCALHOST)
        .unwrap();
    let mut query = Packet::new_query(0x1234);
    query.questions.push(Question::new(
        Name::new_unchecked(name),
        qtype.into(),
        QCLASS::CLASS(simple_dns::CLASS::IN),
        false,
    ));
    let bytes = query.build_bytes_vec().unwrap();
    let mut buffer = vec![0u8; 9000];
    for _ in 0..20 {
        socket.send_to(&bytes, "224.0.0.251:5353").await.unwrap();
        if let Ok(Ok((length, _))) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buffer)).await
        {
            return buffer[..length].to_vec();
        }
    }
    panic!("no mDNS answer for {name}");
}

#[tokio::test]
async fn discovery_announces_wot_over_mdns_on_loopback_and_its_td_record_leads_to_the_things() {
    use simple_dns::rdata::RData;
    let (address, stop) = microscope(json!({"discovery": true})).await;
    let answer = ask_mdns("_wot._tcp.local", simple_dns::TYPE::PTR).await;
    let packet = simple_dns::Packet::parse(&answer).unwrap();
    assert_eq!(packet.id(), 0x1234, "a legacy answer echoes the query's id");
    let instance = packet
        .answers
        .iter()
        .find_map(|record| match &record.rdata {
            RData::PTR(pointer) => Some(pointer.0.to_string()),
            _ => None,
        })
        .expect("a PTR to the instance");
    assert!(
        instance.starts_with("Simulated microscope on ")
            && instance.contains(&format!(":{}.", address.port())),
        "{instance}"
    );
    // Ask for our instance's SRV and TXT by name.
    let host = answer_host(&packet);
    let name = format!(
        "Simulated microscope on {host}:{}._wot._tcp.local",
        address.port()
    );
    let answer = ask_mdns(&name, simple_dns::TYPE::SRV).await;
    let packet = simple_dns::Packet::parse(&answer).unwrap();
    let mut port = None;
    let mut txt = Vec::new();
    let mut a = None;
    for record in packet.answers.iter().chain(&packet.additional_records) {
        match &record.rdata {
            RData::SRV(srv) => port = Some(srv.port),
            RData::TXT(text) => {
                txt = text
                    .attributes()
                    .into_iter()
                    .map(|(key, value)| format!("{key}={}", value.unwrap_or_default()))
                    .collect();
            }
            RData::A(address) => a = Some(std::net::Ipv4Addr::from(address.address)),
            _ => {}
        }
        assert!(record.ttl <= 10, "legacy answers have short TTLs");
    }
    assert_eq!(port, Some(address.port()));
    assert_eq!(
        a,
        Some(std::net::Ipv4Addr::LOCALHOST),
        "the loopback address only"
    );
    assert!(txt.contains(&"td=/.well-known/wot".to_owned()), "{txt:?}");
    assert!(txt.contains(&"type=Thing".to_owned()), "{txt:?}");
    assert!(txt.contains(&"scheme=http".to_owned()), "{txt:?}");
    let td: Value = reqwest::get(format!(
        "http://127.0.0.1:{}/.well-known/wot",
        address.port()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(td["links"].as_array().unwrap().len(), 2);
    drop(stop);
}

/// The host label of the first SRV target (or A record) in an answer.
fn answer_host(packet: &simple_dns::Packet<'_>) -> String {
    use simple_dns::rdata::RData;
    packet
        .answers
        .iter()
        .chain(&packet.additional_records)
        .find_map(|record| match &record.rdata {
            RData::SRV(srv) => Some(srv.target.to_string()),
            _ => None,
        })
        .expect("an SRV record beside the PTR")
        .split('.')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_websocket_works_over_http2_by_extended_connect() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let (address, _stop) = microscope(json!({"tls": {"cert": cert, "key": key}})).await;
    let mut send = h2_connection(address, &cert).await;
    send.ready().await.unwrap();
    let request =
        hyper::Request::connect(format!("https://localhost:{}/camera/ws", address.port()))
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .header("sec-websocket-version", "13")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the server offers RFC 8441 and accepts"
    );
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
        hyper_util::rt::TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    let observe = json!({"messageType": "addPropertyObservation", "data": {"gain": true}});
    socket
        .send(Message::text(observe.to_string()))
        .await
        .unwrap();
    // A change made by another client arrives over the HTTP/2 websocket.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = https_client(&cert, true)
        .put(format!("https://localhost:{}/camera/gain", address.port()))
        .json(&3.0)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let message = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let Message::Text(text) = socket.next().await.unwrap().unwrap() else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["messageType"] == "propertyStatus" && message["data"]["gain"] == 3.0 {
                return message;
            }
        }
    })
    .await
    .expect("no propertyStatus over the HTTP/2 websocket");
    assert_eq!(message["data"]["gain"], 3.0);
}

#[tokio::test]
async fn a_client_that_never_finishes_the_tls_handshake_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncReadExt as _;
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let mut options = ConnectionOptions::default();
    options.header_read_timeout = Duration::from_secs(1);
    let server = crate::support::builder()
        .tls(TlsOptions::files(cert, key))
        .connection(options)
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    // Connected, and silent: no ClientHello ever comes.
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buffer))
        .await
        .expect("the server closed the connection within the header timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// Plain HTTP on the HTTPS port (issue 29): a short plain `400` naming `https://`, as nginx
/// answers, instead of a dropped connection; HTTPS on the same port still works.
#[tokio::test]
async fn plain_http_on_the_https_port_is_told_to_use_https() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let server = crate::support::builder()
        .tls(TlsOptions::files(cert, key))
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
}

/// A private key others can read is used, with a warning saying how to fix it (issue 28,
/// point 9), as OpenSSH warns; a key its owner's alone gets none.
#[test]
fn a_tls_key_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let logs = Captured::start();
    let folder = tempfile::tempdir().unwrap();
    let (cert, key) = certificate_files(folder.path());
    let private = TlsCertificate::from_pem_files(&cert, &key);
    assert!(private.is_ok());
    let fix = format!("chmod 600 {}", key.display());
    assert!(
        !logs.text().contains(&fix),
        "a private key is not warned about"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        TlsCertificate::from_pem_files(&cert, &key).is_ok(),
        "still used"
    );
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains(&fix))
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert!(
        line.contains("WARN") && (line.contains("mode=\"644\"") || line.contains("mode=644")),
        "{line}"
    );
}
