//! Events and observation over Server-Sent Events: emitted from threads, resumed with
//! `Last-Event-ID`, lost events reported, slow readers isolated; and events on the websocket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use labthings::{Event, Property, Thing};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{metrics_text, sample, spawn_thing_server};

/// An alarm's data.
#[labthings::data]
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// What went off.
    pub source: String,
    /// How bad it is, 0 to 10.
    pub level: u8,
}

/// A sensor that ticks and raises alarms.
#[derive(Thing)]
struct Sensor {
    /// The reading.
    #[property]
    reading: Property<f64>,
    /// The mode.
    #[property]
    mode: Property<String>,
    /// Not observable.
    #[property(observable = false)]
    secret: Property<u32>,
    /// A tick: its count.
    #[event]
    tick: Event<u64>,
    /// An alarm went off.
    #[event]
    alarm: Event<Alarm>,
}

impl Sensor {
    fn new() -> Self {
        Self {
            reading: Property::new(1.5),
            mode: Property::new("idle".to_owned()),
            secret: Property::new(7),
            tick: Event::new(),
            alarm: Event::new(),
        }
    }
}

async fn serve(history: usize) -> (SocketAddr, Arc<Sensor>, tokio::sync::oneshot::Sender<()>) {
    let sensor = Arc::new(Sensor::new());
    let server = crate::support::builder()
        .event_history(history)
        .add_thing("sensor", sensor.clone())
        .build()
        .unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    (address, sensor, stop)
}

/// One Server-Sent Events message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: Value,
}

/// Reads `text/event-stream` message by message (comments and heartbeats skipped).
pub(crate) struct SseReader {
    response: reqwest::Response,
    buffer: BytesMut,
}

impl SseReader {
    pub(crate) async fn open(address: SocketAddr, path: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(format!("http://{address}{path}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: BytesMut::new(),
        }
    }

    /// The next message, within 5 s.
    pub(crate) async fn next(&mut self) -> Message {
        tokio::time::timeout(Duration::from_secs(5), self.read())
            .await
            .expect("a message within 5 s")
    }

    /// Whether nothing but comments arrives for a while.
    async fn quiet(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(300), self.read())
            .await
            .is_err()
    }

    async fn read(&mut self) -> Message {
        loop {
            if let Some(end) = find(&self.buffer, b"\n\n") {
                let block = self.buffer.split_to(end + 2);
                let text = String::from_utf8(block.to_vec()).unwrap();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in text.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (heartbeat)
                }
                return Message {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = self
                .response
                .chunk()
                .await
                .unwrap()
                .expect("the stream is open");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn an_event_emitted_from_a_thread_arrives_over_sse_and_the_websocket() {
    let (address, sensor, _stop) = serve(64).await;
    let mut alarms = SseReader::open(address, "/sensor/alarm", None).await;
    let mut everything = SseReader::open(address, "/sensor/events", None).await;
    let mut socket = crate::ws::connect(address, "sensor").await;
    crate::ws::send(
        &mut socket,
        json!({"messageType": "addEventObservation", "data": {"alarm": true}}),
    )
    .await;
    // The websocket has taken the observation once it answers a later, bad request.
    crate::ws::send(&mut socket, json!({"messageType": "nonsense", "data": {}})).await;
    assert!(crate::ws::next(&mut socket).await["error"].is_object());

    let emitter = sensor.clone();
    std::thread::spawn(move || {
        emitter.tick.emit(1).unwrap();
        emitter
            .alarm
            .emit(Alarm {
                source: "door".into(),
                level: 3,
            })
            .unwrap();
    })
    .join()
    .unwrap();

    let alarm = alarms.next().await;
    assert_eq!(alarm.data, json!({"source": "door", "level": 3}));
    assert_eq!(
        alarm.event, None,
        "one event's stream is untyped, as EventSource reads it"
    );
    // The id: the cursor, then the server's time of the event.
    let id = alarm.id.clone().unwrap();
    let (cursor, time) = id.split_once(' ').expect("a cursor and a time");
    assert!(cursor.contains('.'), "{id}");
    let time: chrono::DateTime<chrono::Utc> = time.parse().expect("an RFC 3339 time");
    assert!((chrono::Utc::now() - time).num_seconds().abs() < 10, "{id}");
    let first = everything.next().await;
    assert_eq!(
        (first.event.as_deref(), &first.data),
        (Some("tick"), &json!(1))
    );
    let second = everything.next().await;
    assert_eq!(second.event.as_deref(), Some("alarm"));
    assert_eq!(second.id, alarm.id, "one id per event, whatever the stream");
    // The websocket's message has the same time.
    let mut message = crate::ws::next(&mut socket).await;
    let stamp = message
        .as_object_mut()
        .unwrap()
        .remove("timestamp")
        .expect("the server's timestamp");
    assert_eq!(
        stamp
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        time
    );
    assert_eq!(
        message,
        json!({"messageType": "event", "data": {"alarm": {"source": "door", "level": 3}}})
    );
    assert!(alarms.quiet().await, "the tick is not an alarm");

    crate::ws::send(
        &mut socket,
        json!({"messageType": "removeEventObservation", "data": {"alarm": true}}),
    )
    .await;
    crate::ws::send(&mut socket, json!({"messageType": "nonsense", "data": {}})).await;
    assert!(crate::ws::next(&mut socket).await["error"].is_object());
    sensor
        .alarm
        .emit(Alarm {
            source: "window".into(),
            level: 1,
        })
        .unwrap();
    crate::ws::quiet(&mut socket).await;
}

#[tokio::test]
async fn last_event_id_resumes_with_exactly_the_missed_events_in_order() {
    let (address, sensor, _stop) = serve(64).await;
    let mut ticks = SseReader::open(address, "/sensor/tick", None).await;
    for count in 0..3 {
        sensor.tick.emit(count).unwrap();
    }
    let mut last = None;
    for count in 0..3 {
        let message = ticks.next().await;
        assert_eq!(message.data, json!(count));
        last = message.id;
    }
    drop(ticks); // the connection drops
    for count in 3..6 {
        sensor.tick.emit(count).unwrap();
        sensor
            .alarm
            .emit(Alarm {
                source: "x".into(),
                level: 1,
            })
            .unwrap();
    }
    let mut resumed = SseReader::open(address, "/sensor/tick", last.as_deref()).await;
    for count in 3..6 {
        assert_eq!(resumed.next().await.data, json!(count));
    }
    assert!(resumed.quiet().await, "nothing twice, nothing else");
    sensor.tick.emit(6).unwrap();
    assert_eq!(resumed.next().await.data, json!(6), "then live events");
}

#[tokio::test]
async fn an_id_older_than_the_history_is_reported_as_lost() {
    let (address, sensor, _stop) = serve(3).await;
    let mut ticks = SseReader::open(address, "/sensor/tick", None).await;
    sensor.tick.emit(0).unwrap();
    let first = ticks.next().await.id.unwrap();
    drop(ticks);
    for count in 1..10 {
        sensor.tick.emit(count).unwrap();
    }
    let mut resumed = SseReader::open(address, "/sensor/tick", Some(&first)).await;
    let lost = resumed.next().await;
    assert_eq!(lost.event.as_deref(), Some("labthings:lost"));
    assert_eq!(
        lost.data,
        json!({"missed": 6}),
        "ticks 1 to 6 left the history of 3"
    );
    for count in 7..10 {
        assert_eq!(resumed.next().await.data, json!(count));
    }
    // An id from before a restart (another run of the server): the history, and a warning.
    let mut stranger = SseReader::open(address, "/sensor/tick", Some("1.1")).await;
    let warning = stranger.next().await;
    assert_eq!(warning.event.as_deref(), Some("labthings:lost"));
    assert_eq!(warning.data, json!({"missed": null}));
    for count in 7..10 {
        assert_eq!(stranger.next().await.data, json!(count), "then the history");
    }
    let metrics = metrics_text(&reqwest::Client::new(), &format!("http://{address}")).await;
    // The resumed reader's 6, and any the first reader lost before the server saw it go.
    let lost = sample(
        &metrics,
        "labthings_events_lost_total{thing=\"sensor\",kind=\"events\"}",
    );
    assert!((6.0..=12.0).contains(&lost), "{metrics}");
}

#[tokio::test]
async fn a_stalled_sse_reader_delays_neither_the_emitter_nor_another_subscriber() {
    let (address, sensor, _stop) = serve(16).await;
    // A reader that sends its request and never reads: the server's socket buffers fill up.
    let mut stalled = tokio::net::TcpStream::connect(address).await.unwrap();
    stalled
        .write_all(
            b"GET /sensor/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let _ = stalled.read(&mut head).await.unwrap();
    let mut live = SseReader::open(address, "/sensor/alarm", None).await;
    let big = "x".repeat(16 * 1024);
    let started = Instant::now();
    for level in 0..2000u32 {
        sensor
            .alarm
            .emit(Alarm {
                source: big.clone(),
                level: (level % 10) as u8,
            })
            .unwrap();
        if level % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let emitted_in = started.elapsed();
    sensor
        .alarm
        .emit(Alarm {
            source: "last".into(),
            level: 10,
        })
        .unwrap();
    // 32 MB went to the stalled reader's stream, far past what sockets hold, and emitting
    // never waited for it.
    assert!(
        emitted_in < Duration::from_secs(10),
        "emitting took {emitted_in:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let message = live.next().await;
        if message.data["source"] == "last" {
            break;
        }
        assert!(Instant::now() < deadline, "the live reader fell behind");
    }
    drop(stalled);
}

#[tokio::test]
async fn observing_all_properties_sends_every_value_then_every_change() {
    let (address, sensor, _stop) = serve(64).await;
    let mut all = SseReader::open(address, "/sensor/observe", None).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = all.next().await;
        seen.push((message.event.unwrap(), message.data));
    }
    assert_eq!(
        seen,
        [
            ("reading".to_owned(), json!(1.5)),
            ("mode".to_owned(), json!("idle")),
        ],
        "the current values, not the unobservable `secret`"
    );
    let mut one = SseReader::open(address, "/sensor/reading/observe", None).await;
    assert_eq!(one.next().await.data, json!(1.5));
    sensor.reading.publish(2.5).unwrap();
    let response = reqwest::Client::new()
        .put(format!("http://{address}/sensor/mode"))
        .json(&json!("running"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    sensor.secret.publish(8).unwrap();
    let reading = all.next().await;
    assert_eq!(
        (reading.event.as_deref(), reading.data),
        (Some("reading"), json!(2.5))
    );
    let mode = all.next().await;
    assert_eq!(
        (mode.event.as_deref(), mode.data),
        (Some("mode"), json!("running"))
    );
    assert!(all.quiet().await, "`secret` is not observable");
    let change = one.next().await;
    assert_eq!((change.event, change.data), (None, json!(2.5)));
    assert!(one.quiet().await, "only its own property");
}

#[tokio::test]
async fn the_td_and_the_openapi_document_describe_events_and_sse_observation() {
    let (address, _sensor, _stop) = serve(8).await;
    let td: Value = reqwest::get(format!("http://{address}/sensor/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let errors: Vec<String> = crate::documents::td_schema()
        .iter_errors(&td)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        td["events"]["alarm"]["data"]["required"],
        json!(["source", "level"])
    );
    assert_eq!(td["events"]["alarm"]["forms"][0]["subprotocol"], "sse");
    assert_eq!(td["events"]["alarm"]["forms"][0]["href"], "sensor/alarm");
    let ops: Vec<&Value> = td["forms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["op"][0])
        .collect();
    assert_eq!(
        ops,
        [&json!("observeallproperties"), &json!("subscribeallevents")]
    );
    assert!(
        td["properties"]["secret"]["forms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|form| form["subprotocol"] != "sse"),
        "no observe form for an unobservable property"
    );
    let (document, _) = crate::documents::openapi_operations(address).await;
    for path in [
        "/sensor/alarm",
        "/sensor/events",
        "/sensor/observe",
        "/sensor/mode/observe",
    ] {
        assert!(
            document["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
                .is_object(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn sse_streams_end_cleanly_when_the_server_shuts_down() {
    let (address, _sensor, stop) = serve(8).await;
    let mut events = SseReader::open(address, "/sensor/events", None).await;
    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while events.response.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended at shutdown");
}

/// The next item of a client stream, within 10 s.
async fn next<T>(
    stream: &mut futures_util::stream::BoxStream<
        'static,
        Result<T, labthings::client::ClientError>,
    >,
) -> Result<T, labthings::client::ClientError> {
    tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(stream),
    )
    .await
    .expect("an item within 10 s")
    .expect("the stream goes on")
}

/// A TCP proxy whose connections can be cut, and which can refuse new ones for a while.
struct Proxy {
    address: SocketAddr,
    open: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (accepting, cuts) = (open.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { address, open, cut }
    }

    /// Cuts every connection and refuses new ones until [`reopen`](Self::reopen).
    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn reopen(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_rust_client_resumes_after_a_dropped_connection_with_nothing_lost_or_repeated() {
    let (address, sensor, _stop) = serve(64).await;
    let proxy = Proxy::start(address).await;
    let client =
        labthings::client::ThingClient::connect(format!("http://{}/sensor/", proxy.address))
            .await
            .unwrap();
    let mut ticks = client.subscribe_event::<u64>("tick").unwrap();
    let mut readings = client.watch_property::<f64>("reading").unwrap();
    assert_eq!(next(&mut readings).await.unwrap(), 1.5, "the value now");
    // The subscription is open once a first event arrives through it.
    let mut count = 0;
    loop {
        sensor.tick.emit(count).unwrap();
        let got: u64 = tokio::time::timeout(Duration::from_millis(200), next(&mut ticks))
            .await
            .map(|item| item.unwrap())
            .unwrap_or(u64::MAX);
        count += 1;
        if got != u64::MAX {
            assert_eq!(got, count - 1);
            break;
        }
    }
    proxy.cut();
    let first_missed = count;
    for _ in 0..5 {
        sensor.tick.emit(count).unwrap();
        count += 1;
    }
    sensor.reading.publish(9.5).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.reopen();
    for expected in first_missed..count {
        assert_eq!(
            next(&mut ticks).await.unwrap(),
            expected,
            "in order, once each"
        );
    }
    assert_eq!(
        next(&mut readings).await.unwrap(),
        9.5,
        "the change made while away"
    );
    sensor.tick.emit(count).unwrap();
    assert_eq!(
        next(&mut ticks).await.unwrap(),
        count,
        "then live, with no repeat"
    );
    assert!(matches!(
        client.subscribe_event::<u64>("no_such_event"),
        Err(labthings::client::ClientError::NoSuchAffordance { .. }
            | labthings::client::ClientError::Protocol { .. })
    ));
}

#[tokio::test]
async fn a_quiet_stream_sends_heartbeat_comments() {
    let server = crate::support::builder()
        .sse_heartbeat(Duration::from_millis(100))
        .add_thing("sensor", Sensor::new())
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let mut response = reqwest::get(format!("http://{address}/sensor/events"))
        .await
        .unwrap();
    let mut body = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    // No event is emitted: whatever arrives is the heartbeat, a comment line.
    while !body.windows(2).any(|w| w == b"\n:" || w == b":\n") && !body.starts_with(b":") {
        assert!(Instant::now() < deadline, "no heartbeat in 5 s: {body:?}");
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("a heartbeat")
            .unwrap()
            .unwrap();
        body.extend_from_slice(&chunk);
    }
    assert!(
        !String::from_utf8_lossy(&body).contains("data:"),
        "only comments"
    );
}

#[tokio::test]
async fn the_example_stage_reports_finished_moves_and_refused_ones_as_events() {
    let server = crate::support::builder()
        .add_thing("stage", crate::example_things::Stage::new())
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let mut moved = SseReader::open(address, "/stage/moved", None).await;
    let mut limits = SseReader::open(address, "/stage/limit_reached", None).await;
    let client = reqwest::Client::new();
    let invoke = |action: &str, input: Value| {
        client
            .post(format!("http://{address}/stage/{action}?wait=10"))
            .json(&input)
            .send()
    };
    let done: Value = invoke("move_to", json!({"x": 5, "y": 6, "z": 7}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(moved.next().await.data, json!([5, 6, 7]));
    let refused: Value = invoke("move_relative", json!({"x": i64::MAX, "y": 0}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        refused["status"], "error",
        "an overflowing move is refused, not wrapped"
    );
    assert_eq!(
        limits.next().await.data,
        json!({"target": [null, 6, 7], "travel": 100_000})
    );
    assert!(moved.quiet().await, "a refused move did not finish");
}

#[tokio::test]
async fn the_rust_client_reports_events_lost_while_it_was_away_and_goes_on() {
    let (address, sensor, _stop) = serve(3).await;
    let proxy = Proxy::start(address).await;
    let client =
        labthings::client::ThingClient::connect(format!("http://{}/sensor/", proxy.address))
            .await
            .unwrap();
    let mut ticks = client.subscribe_event::<u64>("tick").unwrap();
    // Subscribed once a first event comes through.
    let mut count = 0;
    loop {
        sensor.tick.emit(count).unwrap();
        count += 1;
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(200), next(&mut ticks)).await {
            assert_eq!(item.unwrap(), count - 1);
            break;
        }
    }
    proxy.cut();
    for _ in 0..10 {
        sensor.tick.emit(count).unwrap();
        count += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.reopen();
    match next(&mut ticks).await {
        Err(labthings::client::ClientError::EventsLost { missed, .. }) => {
            assert_eq!(
                missed,
                Some(7),
                "10 emitted while away, the history holds 3"
            )
        }
        other => panic!("expected the loss first, got {other:?}"),
    }
    for expected in count - 3..count {
        assert_eq!(
            next(&mut ticks).await.unwrap(),
            expected,
            "then the history, in order"
        );
    }
}
