//! Hostile clients (issue 19): what one client can make the server hold is bounded (metrics
//! series, websocket messages and sockets, connections, slow bodies, echoed values), and pages
//! of other sites cannot act through a lab member's browser. Every loop is bounded in count and
//! time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{metrics_text, problem, raw_exchange, spawn_configured};

const STAGE: &str = r#"{"things": {"stage": "simulated_stage"}}"#;

fn options(
    change: impl FnOnce(&mut labthings::serve::ConnectionOptions),
) -> labthings::serve::ConnectionOptions {
    let mut options = labthings::serve::ConnectionOptions::default();
    change(&mut options);
    options
}

/// The status line of a raw exchange's answer.
async fn status_line(address: std::net::SocketAddr, request: &str) -> String {
    let (answer, _) = raw_exchange(address, request.as_bytes(), Duration::from_secs(5)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn made_up_methods_are_counted_as_other_and_never_become_labels() {
    let address = spawn_configured(STAGE, Default::default()).await;
    for n in 0..200 {
        let method = format!("M{n}{}", "X".repeat(2000));
        let request = format!(
            "{method} /stage/position HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        );
        raw_exchange(address, request.as_bytes(), Duration::from_secs(5)).await;
    }
    let text = metrics_text(&reqwest::Client::new(), &format!("http://{address}")).await;
    assert!(!text.contains("XXXX"), "a client's method became a label");
    assert!(text.len() < 20_000, "/metrics is {} bytes", text.len());
    let other: f64 = text
        .lines()
        .filter(|line| line.starts_with("labthings_http_requests_total{method=\"other\""))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(other, 200.0);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn websocket(address: std::net::SocketAddr) -> Socket {
    tokio_tungstenite::connect_async(format!("ws://{address}/stage/ws"))
        .await
        .unwrap()
        .0
}

/// The replies that arrive within `quiet` of each other, the first within 10 s (a loaded
/// machine may be slow to answer; a burst of replies then comes at once).
async fn replies(socket: &mut Socket, quiet: Duration) -> Vec<Value> {
    let mut replies = Vec::new();
    let mut wait = Duration::from_secs(10);
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(wait, socket.next()).await {
        replies.push(serde_json::from_str(&text).unwrap());
        wait = quiet;
    }
    replies
}

/// Asks to observe these properties; the replies.
async fn observe(socket: &mut Socket, names: serde_json::Map<String, Value>) -> Vec<Value> {
    let message = json!({"messageType": "addPropertyObservation", "data": names});
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
    replies(socket, Duration::from_millis(500)).await
}

#[tokio::test]
async fn websocket_messages_are_small_name_few_things_and_get_few_replies() {
    let address = spawn_configured(STAGE, Default::default()).await;

    // Many unknown names: a bounded number of replies, the last saying how many more.
    let mut socket = websocket(address).await;
    let names: serde_json::Map<String, Value> = (0..200)
        .map(|n| (format!("nope{n}"), json!(true)))
        .collect();
    let answered = observe(&mut socket, names).await;
    assert!(answered.len() <= 17, "{} replies", answered.len());
    let last = answered.last().unwrap()["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(last.contains("184 more"), "{last}");

    // More names than any Thing has: one refusal.
    let names: serde_json::Map<String, Value> =
        (0..1000).map(|n| (format!("n{n}"), json!(true))).collect();
    let answered = observe(&mut socket, names).await;
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert!(
        answered[0]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("at most 256")
    );

    // A message far larger than the protocol needs closes the socket.
    let huge =
        json!({"messageType": "addPropertyObservation", "data": {"x".repeat(100_000): true}});
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the socket stayed open after a 100 KB message"
    );

    // The server is unharmed.
    let mut socket = websocket(address).await;
    let observe = json!({"messageType": "addPropertyObservation", "data": {"position": true}});
    socket
        .send(Message::Text(observe.to_string().into()))
        .await
        .unwrap();
    reqwest::Client::new()
        .put(format!("http://{address}/stage/position"))
        .json(&json!([1, 2, 3]))
        .send()
        .await
        .unwrap();
    let answered = replies(&mut socket, Duration::from_secs(2)).await;
    assert!(
        answered
            .iter()
            .any(|r| r["data"]["position"] == json!([1, 2, 3]))
    );
}

#[tokio::test]
async fn open_websockets_count_against_the_connection_limit() {
    let address = spawn_configured(
        STAGE,
        options(|o| {
            o.max_connections = Some(8);
            o.max_connections_per_client = None;
        }),
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("http://{address}/stage/position");
    let mut sockets = Vec::new();
    for _ in 0..8 {
        sockets.push(websocket(address).await);
    }
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 503, "eight websockets hold every slot");
    sockets.clear();
    // Closed websockets free their slots.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = http.get(&url).send().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the websockets closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection kept open after one request was answered 200 on it: answered proves the
/// server counts it before the next one comes.
async fn answered_connection(address: SocketAddr) -> tokio::net::TcpStream {
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /stage/position HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    socket.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    socket
}

#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    let address =
        spawn_configured(STAGE, options(|o| o.max_connections_per_client = Some(4))).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(answered_connection(address).await);
    }
    let request = "GET /stage/position HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (answer, _) = raw_exchange(address, request.as_bytes(), Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("limit per client"), "{answer}");
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !status_line(address, request)
        .await
        .starts_with("HTTP/1.1 200")
    {
        assert!(Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_trusted_proxy_is_not_held_to_the_per_client_limit() {
    // Every client behind a reverse proxy has the proxy's address.
    let address = spawn_configured(
        r#"{"things": {"stage": "simulated_stage"}, "trusted_proxies": ["127.0.0.0/8"]}"#,
        options(|o| o.max_connections_per_client = Some(2)),
    )
    .await;
    // Four from one address, over the per-client limit of 2: each is answered.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(answered_connection(address).await);
    }
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408() {
    let address = spawn_configured(
        STAGE,
        options(|o| o.body_read_timeout = Duration::from_secs(1)),
    )
    .await;
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(
            b"PUT /stage/position HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n[1,",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buffer = [0u8; 1024];
        loop {
            // One more byte every 200 ms: the body keeps arriving, too slowly.
            let _ = socket.write_all(b" ").await;
            match tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection was held for 60 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // Only the body timeout answers 408 here (the head was whole), while bytes kept arriving.
    eprintln!("answered 408 after {:?}", started.elapsed());
}

/// A browser-shaped cross-site request: an HTML form's POST (no body, a form content type) or
/// a `fetch` from another site's page carries that page's `Origin`.
#[tokio::test]
async fn pages_of_other_sites_cannot_act_but_scripts_and_the_servers_own_pages_can() {
    let address = spawn_configured(
        r#"{"things": {"stage": "simulated_stage"}, "allow_origins": ["http://lab-ui.local:8080"]}"#,
        Default::default(),
    )
    .await;
    let http = reqwest::Client::new();
    let home = format!("http://{address}/stage/home");
    let form_post = |origin: Option<String>| {
        let mut request = http
            .post(&home)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let refused = form_post(Some("https://evil.example".into()))
        .await
        .unwrap();
    let body = problem(refused, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("evil.example"));
    assert_eq!(
        http.get(format!("http://{address}/stage/home"))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
            .len(),
        0,
        "nothing was started"
    );
    let write = http
        .put(format!("http://{address}/stage/position"))
        .header("origin", "null")
        .json(&json!([1, 1, 1]))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    // A form's body is not JSON: refused whoever sends it.
    let form_body = http
        .put(format!("http://{address}/stage/position"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("position=1")
        .send()
        .await
        .unwrap();
    assert_eq!(form_body.status(), 415);

    for origin in [
        None,
        Some(format!("http://{address}")),
        Some("http://lab-ui.local:8080".into()),
    ] {
        let started = form_post(origin.clone()).await.unwrap();
        assert_eq!(started.status(), 201, "{origin:?}");
        let invocation: Value = started.json().await.unwrap();
        http.delete(invocation["href"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_huge_bad_value_is_not_echoed_back_whole() {
    let address = spawn_configured(STAGE, Default::default()).await;
    let huge = json!("y".repeat(1_900_000));
    let response = reqwest::Client::new()
        .put(format!("http://{address}/stage/position"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    let body = problem(response, 422).await;
    let size = body.to_string().len();
    assert!(size < 16_384, "the 422 is {size} bytes");
    assert_eq!(body["invalid-params"][0]["name"], "position");
}

/// `#[action(lock = "motion")]`: the example stage's moves share one lock, so a move invoked
/// while `home` runs waits for it (they once overlapped, and `home` overwrote the move).
#[tokio::test]
async fn moves_sharing_a_lock_never_overlap() {
    let address = spawn_configured(STAGE, Default::default()).await;
    let http = reqwest::Client::new();
    let start = |action: &'static str, body: Value| {
        let http = http.clone();
        async move {
            let response = http
                .post(format!("http://{address}/stage/{action}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["href"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let home = start("home", json!({})).await;
    let relative = start("move_relative", json!({"x": 5, "y": 0})).await;
    let to = start("move_to", json!({"x": 1, "y": 2, "z": 3})).await;
    let finished = |href: String| {
        let http = http.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let now: Value = http.get(&href).send().await.unwrap().json().await.unwrap();
                if now["status"] == "completed" {
                    return now;
                }
                assert!(Instant::now() < deadline, "{now}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let mut runs = [
        finished(home).await,
        finished(relative).await,
        finished(to).await,
    ];
    let time = |run: &Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(run[key].as_str().unwrap()).unwrap()
    };
    runs.sort_by_key(|run| time(run, "timeStarted"));
    for pair in runs.windows(2) {
        assert!(
            time(&pair[1], "timeStarted") >= time(&pair[0], "timeCompleted"),
            "{} started before {} ended",
            pair[1]["action"],
            pair[0]["action"]
        );
    }
    // No move overwrote another's result: the stage is where the last one left it.
    let position =
        crate::support::json_of(http.get(format!("http://{address}/stage/position"))).await;
    assert_eq!(position, runs[2]["output"]);
}

/// Behind a reverse proxy the server's pages come from `public_url`: its origin may write, and
/// its host name is one of the server's (no `allow_hosts` needed).
#[tokio::test]
async fn the_public_urls_origin_and_host_are_the_servers_own() {
    let server = crate::support::builder()
        .public_url("https://lab.example/")
        .add_thing("stage", crate::example_things::Stage::new())
        .build()
        .unwrap();
    let (address, stop, _task) = crate::support::spawn_thing_server(server).await;
    let http = reqwest::Client::new();
    let write = |origin: &'static str| {
        http.put(format!("http://{address}/stage/position"))
            .header("origin", origin)
            .json(&json!([1, 2, 3]))
            .send()
    };
    assert_eq!(write("https://lab.example").await.unwrap().status(), 204);
    assert_eq!(
        write("https://elsewhere.example").await.unwrap().status(),
        403
    );
    let request = "GET /stage/position HTTP/1.1\r\nHost: lab.example\r\nConnection: close\r\n\r\n";
    assert!(
        status_line(address, request)
            .await
            .starts_with("HTTP/1.1 200")
    );
    drop(stop);
}

/// A blocking action without a context cannot be stopped once running, but one still waiting
/// for its lock has not started, and is cancelled.
#[tokio::test]
async fn an_uncancellable_action_waiting_for_its_lock_can_be_cancelled() {
    let address = spawn_configured(STAGE, Default::default()).await;
    let http = reqwest::Client::new();
    let post = |action: &'static str, body: Value| {
        crate::support::json_of(
            http.post(format!("http://{address}/stage/{action}"))
                .json(&body),
        )
    };
    // `home` holds the stage's motion lock for about 2 s; `move_to` (a plain `fn`) waits.
    let home = post("home", json!({})).await;
    let queued = post("move_to", json!({"x": 1, "y": 1, "z": 1})).await;
    assert_eq!(queued["status"], "pending");
    let href = queued["href"].as_str().unwrap();
    assert_eq!(http.delete(href).send().await.unwrap().status(), 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = crate::support::json_of(http.get(href)).await;
        if now["status"] != "pending" {
            assert_eq!(now["status"], "cancelled");
            break;
        }
        assert!(Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    http.delete(home["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
}

/// Malformed `Host` and repeated `Origin` headers (issue 28, points 6 and 7): `400`, as RFC 9112
/// §3.2 asks, never a `200` whose links point at whatever the request said.
#[tokio::test]
async fn malformed_host_and_repeated_origin_headers_are_400() {
    let address = spawn_configured(STAGE, labthings::serve::ConnectionOptions::default()).await;
    let bad = [
        "GET /stage/ HTTP/1.1\r\nHost: user@localhost\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.1\r\nHost: local host\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.1\r\nHost: localhost,evil.example\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET http://evil.example/stage/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "PUT /stage/position HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\n\
         Origin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n[1, 2, 3]",
    ];
    for request in bad {
        let (answer, _) = raw_exchange(address, request.as_bytes(), Duration::from_secs(30)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{request:?} -> {answer}"
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
    // Well-formed ones are served.
    for good in [
        "GET /stage/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nConnection: close\r\n\r\n",
        "GET /stage/ HTTP/1.0\r\n\r\n",
    ] {
        let (answer, _) = raw_exchange(address, good.as_bytes(), Duration::from_secs(30)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "{good:?} -> {answer}"
        );
    }
}
