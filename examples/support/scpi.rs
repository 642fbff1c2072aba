//! A bench instrument that speaks SCPI over a serial line: a power supply, driven from a worker
//! thread that owns the port. The guide's "A bench instrument: SCPI over a serial line" walks
//! through it; `examples/scpi.rs` serves it and `tests/it/scpi.rs` drives it against a
//! simulated instrument on a pseudo-terminal.
//!
//! - One thread owns the port: it polls the measured voltage, carries out the commands the
//!   server sends it (a new set point), and reads each answer within a timeout.
//! - A link that stops answering (unplugged, switched off, a timeout) is a state clients see:
//!   `connected` goes false and `last_error` says why; the thread reopens the port with
//!   backoff, and when the instrument answers again it sets the set point back.
//! - A write while the link is down is refused with `503` and a reason, never accepted and lost.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use labthings::property::SetError;
use labthings::{Property, Thing};

/// How long one answer may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the measured voltage is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A command for the port's thread, with where its result goes.
type Command = (String, tokio::sync::oneshot::Sender<Result<(), String>>);

/// A bench power supply on a serial line (SCPI: `*IDN?`, `MEAS:VOLT?`, `SOUR:VOLT <v>`).
#[derive(Thing)]
#[thing(on_start = Self::start, on_stop = Self::stop)]
pub struct PowerSupply {
    /// Whether the instrument answers.
    #[property(read_only)]
    pub connected: Property<bool>,
    /// Why the link is down, while it is.
    #[property(read_only)]
    pub last_error: Property<Option<String>>,
    /// What the instrument says it is (`*IDN?`).
    #[property(read_only)]
    pub identity: Property<String>,
    /// The measured output voltage.
    #[property(read_only, unit = "V")]
    pub voltage: Property<f64>,
    /// The voltage the output is set to; sent to the instrument, and set again after a
    /// reconnection.
    #[setting(min = 0.0, max = 30.0, unit = "V")]
    pub set_voltage: Property<f64>,
    path: String,
    commands: Sender<Command>,
    waiting: Mutex<Option<Receiver<Command>>>,
    worker: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl PowerSupply {
    /// A power supply on the serial port at `path` (`/dev/ttyUSB0`), not yet opened.
    pub fn new(path: impl Into<String>) -> Self {
        let (commands, waiting) = channel::<Command>();
        let sender = commands.clone();
        Self {
            connected: Property::new(false),
            last_error: Property::new(Some("not opened yet".to_owned())),
            identity: Property::new(String::new()),
            voltage: Property::new(0.0),
            set_voltage: Property::new(0.0).with_setter(move |volts: f64| {
                let sender = sender.clone();
                async move {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    sender
                        .send((format!("SOUR:VOLT {volts}"), reply))
                        .map_err(|_| SetError::unavailable("the instrument is not running"))?;
                    match tokio::time::timeout(ANSWER_TIMEOUT * 4, answer).await {
                        Ok(Ok(Ok(()))) => Ok(()),
                        Ok(Ok(Err(error))) => Err(SetError::unavailable(format!(
                            "the value was not set: {error}"
                        ))),
                        Ok(Err(_)) | Err(_) => Err(SetError::unavailable(
                            "the instrument does not answer; the value was not set",
                        )),
                    }
                }
            }),
            path: path.into(),
            commands,
            waiting: Mutex::new(Some(waiting)),
            worker: Mutex::new(None),
        }
    }

    async fn start(&self) -> Result<(), std::io::Error> {
        let Some(commands) = self.waiting.lock().unwrap().take() else {
            return Ok(());
        };
        let stop = Arc::new(AtomicBool::new(false));
        let link = Link {
            path: self.path.clone(),
            connected: self.connected.clone(),
            last_error: self.last_error.clone(),
            identity: self.identity.clone(),
            voltage: self.voltage.clone(),
            set_voltage: self.set_voltage.clone(),
            commands,
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("scpi".into())
            .spawn(move || link.run())?;
        *self.worker.lock().unwrap() = Some((stop, thread));
        Ok(())
    }

    async fn stop(&self) {
        let worker = self.worker.lock().unwrap().take();
        if let Some((stop, thread)) = worker {
            stop.store(true, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// What the port's thread holds.
struct Link {
    path: String,
    connected: Property<bool>,
    last_error: Property<Option<String>>,
    identity: Property<String>,
    voltage: Property<f64>,
    set_voltage: Property<f64>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
}

/// An open port, read line by line.
struct Port {
    reader: BufReader<Box<dyn serialport::SerialPort>>,
}

impl Port {
    fn open(path: &str) -> Result<Self, String> {
        let port = serialport::new(path, 115_200)
            .timeout(ANSWER_TIMEOUT)
            .open()
            .map_err(|error| format!("cannot open {path}: {error}"))?;
        Ok(Self {
            reader: BufReader::new(port),
        })
    }

    /// Sends a command that has no answer.
    fn send(&mut self, command: &str) -> Result<(), String> {
        let port = self.reader.get_mut();
        port.write_all(format!("{command}\n").as_bytes())
            .and_then(|()| port.flush())
            .map_err(|error| format!("writing `{command}`: {error}"))
    }

    /// Sends a query and reads its one-line answer within [`ANSWER_TIMEOUT`].
    fn query(&mut self, query: &str) -> Result<String, String> {
        self.send(query)?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(format!("no answer to `{query}`: the line is closed")),
            Ok(_) if line.ends_with('\n') => Ok(line.trim().to_owned()),
            Ok(_) | Err(_) => Err(format!(
                "no answer to `{query}` within {} ms",
                ANSWER_TIMEOUT.as_millis()
            )),
        }
    }
}

impl Link {
    fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        while !self.stop.load(Ordering::Relaxed) {
            let error = match Port::open(&self.path).and_then(|port| self.serve(port)) {
                Ok(()) => return, // stopped
                Err(error) => error,
            };
            // The link is down: say so once per change, refuse commands meanwhile, retry.
            if self.connected.get() || self.last_error.get().as_deref() != Some(error.as_str()) {
                tracing::warn!(path = %self.path, %error, "instrument link down");
            }
            let _ = self.connected.publish(false);
            let _ = self.last_error.publish(Some(error.clone()));
            let until = Instant::now() + backoff;
            while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                while let Ok((_, reply)) = self.commands.try_recv() {
                    let _ = reply.send(Err(error.clone()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Talks to an open port until it fails (the error) or the Thing stops (`Ok`).
    fn serve(&mut self, mut port: Port) -> Result<(), String> {
        let identity = port.query("*IDN?")?;
        // The instrument may have been switched off: give it its set point again.
        port.send(&format!("SOUR:VOLT {}", self.set_voltage.get()))?;
        let _ = self.identity.publish(identity.clone());
        let _ = self.last_error.publish(None);
        let _ = self.connected.publish(true);
        tracing::info!(path = %self.path, %identity, "instrument connected");
        while !self.stop.load(Ordering::Relaxed) {
            while let Ok((command, reply)) = self.commands.try_recv() {
                let sent = port.send(&command).and_then(|()| {
                    // SCPI's way to know a command was taken: ask whether it is done.
                    port.query("*OPC?").map(|_| ())
                });
                let failed = sent.as_ref().err().cloned();
                let _ = reply.send(sent);
                if let Some(error) = failed {
                    return Err(error);
                }
            }
            let reading = port.query("MEAS:VOLT?")?;
            let volts: f64 = reading
                .parse()
                .map_err(|_| format!("`MEAS:VOLT?` answered {reading:?}, not a number"))?;
            let _ = self.voltage.publish(volts);
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }
}
