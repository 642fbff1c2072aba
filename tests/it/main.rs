//! Integration tests: a real server on an ephemeral port, spoken to over real HTTP.
//!
//! One test binary with modules keeps link time down.

mod support;

// The simulated instruments of `examples/`, shared with the examples.
#[path = "../../examples/support/things.rs"]
mod example_things;
#[path = "../../examples/support/sim.rs"]
mod sim;
// The SCPI recipe's power supply.
#[path = "../../examples/support/scpi.rs"]
mod scpi;

mod actions;
mod arguments;
mod client;
mod data;
mod deploy;
mod directory;
mod documents;
mod events;
mod examples;
mod faults;
#[cfg(all(feature = "aravis", target_os = "linux"))]
mod genicam;
mod h264;
mod hardening;
mod health;
mod history;
mod limits;
mod macros;
mod scpi_link;
mod stop_all;
mod stream_http;
mod structure;
mod things;
mod ws;
