//! `WS /<thing>/ws`: observing properties and actions.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::actions::Lab;
use crate::support::spawn_thing_server;
use crate::things::Everything;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve() -> (
    std::net::SocketAddr,
    Arc<Everything>,
    tokio::sync::oneshot::Sender<()>,
) {
    let everything = Arc::new(Everything::new());
    let server = crate::support::builder()
        .add_thing("things_test", everything.clone())
        .add_thing("lab", Lab::new())
        .build()
        .unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    (address, everything, stop)
}

pub async fn connect(address: std::net::SocketAddr, thing: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/{thing}/ws"))
        .await
        .unwrap();
    socket
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, within 5 s.
pub async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Asserts nothing arrives for a while.
pub async fn quiet(socket: &mut Socket) {
    let waited = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(waited.is_err(), "unexpected message: {waited:?}");
}

async fn put(address: std::net::SocketAddr, path: &str, value: Value) {
    let response = reqwest::Client::new()
        .put(format!("http://{address}{path}"))
        .json(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn observing_a_property_sends_its_value_and_every_change_until_removed() {
    let (address, _, _stop) = serve().await;
    let mut socket = connect(address, "things_test").await;
    send(
        &mut socket,
        json!({"messageType": "addPropertyObservation", "data": {"number": true}}),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        json!({"messageType": "propertyStatus", "data": {"number": 10.0}})
    );
    put(address, "/things_test/number", json!(42.0)).await;
    assert_eq!(
        next(&mut socket).await,
        json!({"messageType": "propertyStatus", "data": {"number": 42.0}})
    );

    send(
        &mut socket,
        json!({"messageType": "removePropertyObservation", "data": {"number": true}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    put(address, "/things_test/number", json!(43.0)).await;
    quiet(&mut socket).await;
}

#[tokio::test]
async fn unknown_and_unobservable_names_and_bad_messages_get_error_responses() {
    let (address, _, _stop) = serve().await;
    let mut socket = connect(address, "things_test").await;
    send(
        &mut socket,
        json!({"messageType": "addPropertyObservation", "data": {"nonexistent": true}}),
    )
    .await;
    let reply = next(&mut socket).await;
    assert_eq!(reply["messageType"], "response");
    assert_eq!(reply["operation"], "observeproperty");
    assert_eq!(reply["name"], "nonexistent");
    assert_eq!(reply["error"]["status"], "404");
    assert_eq!(
        reply["error"]["type"],
        "https://w3c.github.io/web-thing-protocol/errors#not-found"
    );

    send(
        &mut socket,
        json!({"messageType": "addPropertyObservation", "data": {"roi": true}}),
    )
    .await;
    let reply = next(&mut socket).await;
    assert_eq!(
        reply["error"]["status"], "403",
        "roi is not observable: {reply}"
    );

    send(
        &mut socket,
        json!({"messageType": "addActionObservation", "data": {"nope": true}}),
    )
    .await;
    assert_eq!(next(&mut socket).await["error"]["status"], "404");

    socket.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next(&mut socket).await["error"]["status"], "400");
    send(
        &mut socket,
        json!({"messageType": "subscribeEverything", "data": {}}),
    )
    .await;
    let reply = next(&mut socket).await;
    assert!(
        reply["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("subscribeEverything")
    );
}

#[tokio::test]
async fn observing_an_action_sends_each_status_with_the_invocation_id() {
    let (address, _, _stop) = serve().await;
    let mut socket = connect(address, "lab").await;
    send(
        &mut socket,
        json!({"messageType": "addActionObservation", "data": {"add": true}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let invocation: Value = reqwest::Client::new()
        .post(format!("http://{address}/lab/add"))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("completed") {
        let message = next(&mut socket).await;
        assert_eq!(message["messageType"], "actionStatus");
        assert_eq!(message["data"]["action name"], "add");
        assert_eq!(message["data"]["id"], invocation["id"]);
        assert_eq!(message["data"]["href"], invocation["href"]);
        statuses.push(message["data"]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["pending", "running", "completed"]);
    // Other actions are not reported.
    reqwest::Client::new()
        .post(format!("http://{address}/lab/zero"))
        .send()
        .await
        .unwrap();
    quiet(&mut socket).await;
}

/// A Thing whose property values are large, so a client that does not read fills every socket
/// buffer quickly.
#[derive(labthings::Thing)]
struct Chatty {
    #[property]
    text: labthings::Property<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_never_blocks_writes_and_then_gets_the_newest_value() {
    let chatty = Arc::new(Chatty {
        text: labthings::Property::new(String::new()),
    });
    let server = crate::support::builder()
        .add_thing("chatty", chatty.clone())
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let mut slow = connect(address, "chatty").await;
    send(
        &mut slow,
        json!({"messageType": "addPropertyObservation", "data": {"text": true}}),
    )
    .await;
    assert_eq!(next(&mut slow).await["data"]["text"], "");

    // 1,000 values of 64 kB (64 MB) while the client reads nothing: far more than the socket
    // buffers on both sides hold (about 10 MB), so the server cannot send them all. A write
    // that waited for this client would wait for ever (it reads only once all are written), so
    // finishing at all is the proof; the bound is generous, for a loaded 2-core machine (5.6 s
    // was seen there with a build running beside the tests; unloaded it is well under 1 s).
    let started = std::time::Instant::now();
    let padding = "x".repeat(64 * 1024);
    for n in 0..1000 {
        chatty.text.publish(format!("{n:04}{padding}")).unwrap();
    }
    chatty.text.publish("final".to_owned()).unwrap();
    let writes = started.elapsed();
    assert!(writes < Duration::from_secs(60), "writes took {writes:?}");

    // Then the client reads: it ends on the newest value, having skipped stale ones.
    let mut received = 0;
    loop {
        let message = next(&mut slow).await;
        received += 1;
        if message["data"]["text"] == "final" {
            break;
        }
    }
    assert!(
        received < 1000,
        "stale values were skipped: {received} messages"
    );
}
