//! The SCPI recipe (issue 29, point 8): the example's power supply against a simulated
//! instrument on a pseudo-terminal that the test opens. It connects and reads the identity,
//! a set point reaches the instrument, a link that stops answering is shown as a state (and a
//! write meanwhile is a 503, not a silent loss), and when the instrument answers again the
//! Thing reconnects and sets the set point back.

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::scpi::PowerSupply;
use crate::support::{eventually_async, spawn_thing_server};

/// A power supply simulated on the master side of a pseudo-terminal.
struct Instrument {
    /// The terminal the Thing opens, as a serial port.
    path: String,
    volts: Arc<Mutex<f64>>,
    /// While set, it reads commands and answers none (switched off, a broken cable).
    silent: Arc<AtomicBool>,
    heard: Arc<Mutex<Vec<String>>>,
}

impl Instrument {
    fn start() -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let path = ptsname(&master, Vec::new()).unwrap().into_string().unwrap();
        let instrument = Self {
            path,
            volts: Arc::new(Mutex::new(0.0)),
            silent: Arc::new(AtomicBool::new(false)),
            heard: Arc::new(Mutex::new(Vec::new())),
        };
        let (volts, silent, heard) = (
            instrument.volts.clone(),
            instrument.silent.clone(),
            instrument.heard.clone(),
        );
        let mut line = std::fs::File::from(master);
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buffer = [0u8; 256];
            loop {
                let read = match line.read(&mut buffer) {
                    Ok(0) | Err(_) => {
                        // No one has the terminal open yet (or between reopenings).
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    Ok(read) => read,
                };
                pending.extend_from_slice(&buffer[..read]);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let command: Vec<u8> = pending.drain(..=end).collect();
                    let command = String::from_utf8_lossy(&command).trim().to_owned();
                    heard.lock().unwrap().push(command.clone());
                    if silent.load(Ordering::SeqCst) {
                        continue;
                    }
                    let answer = if command == "*IDN?" {
                        Some("SIM,PSU-30,0,1.0".to_owned())
                    } else if command == "*OPC?" {
                        Some("1".to_owned())
                    } else if command == "MEAS:VOLT?" {
                        Some(format!("{}", *volts.lock().unwrap()))
                    } else if let Some(value) = command.strip_prefix("SOUR:VOLT ") {
                        *volts.lock().unwrap() = value.parse().unwrap_or(f64::NAN);
                        None
                    } else {
                        None
                    };
                    if let Some(answer) = answer {
                        let _ = line.write_all(format!("{answer}\n").as_bytes());
                    }
                }
            }
        });
        instrument
    }

    fn heard(&self, command: &str) -> usize {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|heard| *heard == command)
            .count()
    }
}

async fn get(http: &reqwest::Client, url: String) -> Value {
    crate::support::json_of(http.get(url)).await
}

#[tokio::test]
async fn the_scpi_power_supply_connects_sets_shows_a_dead_link_and_reconnects() {
    let instrument = Instrument::start();
    let settings = tempfile::tempdir().unwrap();
    let server = labthings::ThingServer::builder()
        .settings_folder(settings.path())
        .add_thing("psu", PowerSupply::new(&instrument.path))
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let (http, base) = (reqwest::Client::new(), format!("http://{address}/psu"));

    eventually_async(|| async { get(&http, format!("{base}/connected")).await == true }).await;
    assert_eq!(
        get(&http, format!("{base}/identity")).await,
        "SIM,PSU-30,0,1.0"
    );
    assert_eq!(get(&http, format!("{base}/last_error")).await, Value::Null);

    // A set point reaches the instrument, and its measurement comes back.
    let set = http
        .put(format!("{base}/set_voltage"))
        .json(&12.5)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());
    assert!(instrument.heard("SOUR:VOLT 12.5") >= 1);
    eventually_async(|| async { get(&http, format!("{base}/voltage")).await == 12.5 }).await;
    // Out of range: refused before anything is sent, with its unit.
    let high = http
        .put(format!("{base}/set_voltage"))
        .json(&40.0)
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(high, 422).await;
    assert!(problem.to_string().contains("at most 30 V"), "{problem}");

    // The instrument stops answering: the link is shown down, and a write is refused.
    instrument.silent.store(true, Ordering::SeqCst);
    eventually_async(|| async { get(&http, format!("{base}/connected")).await == false }).await;
    let why = get(&http, format!("{base}/last_error")).await;
    assert!(
        why.as_str().unwrap_or_default().contains("no answer"),
        "{why}"
    );
    let refused = http
        .put(format!("{base}/set_voltage"))
        .json(&5.0)
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(refused, 503).await;
    assert!(problem.to_string().contains("not set"), "{problem}");
    assert_eq!(get(&http, format!("{base}/set_voltage")).await, 12.5);

    // It answers again: reconnected, and its set point given back.
    let restored_before = instrument.heard("SOUR:VOLT 12.5");
    *instrument.volts.lock().unwrap() = 0.0; // as if it had been switched off and on
    instrument.silent.store(false, Ordering::SeqCst);
    eventually_async(|| async { get(&http, format!("{base}/connected")).await == true }).await;
    assert!(instrument.heard("SOUR:VOLT 12.5") > restored_before);
    eventually_async(|| async { get(&http, format!("{base}/voltage")).await == json!(12.5) }).await;
}
