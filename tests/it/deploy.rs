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
        .connection(ConnectionOptions::default())
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

/// One TLS connection speaking HTTP/2, with a small flow-control window, so that a stream
/// whose body is not read stalls at once.
async fn h2_connection(
    address: SocketAddr,
    cert: &Path,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>> {
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
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(16 * 1024)
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    send
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
