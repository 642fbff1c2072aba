//! A simulated microscope: a stage and a camera that looks through it, so the image moves
//! when the stage does. No hardware and no configuration needed.
//!
//! ```text
//! cargo run --example microscope -- [--config FILE] [--host 127.0.0.1] [--port 5000]
//! ```
//!
//! Without `--config` it serves the built-in configuration (`MICROSCOPE_CONFIG` in
//! `support/things.rs`); a file in the same shape can change the Things, their arguments, the
//! settings folder and the API prefix. Move the stage and watch the stream:
//!
//! ```text
//! curl -X PUT -H 'Content-Type: application/json' -d '[100, 50, 0]' http://127.0.0.1:5000/stage/position
//! ```

#[path = "support/sim.rs"]
mod sim;
#[path = "support/things.rs"]
mod things;

#[tokio::main]
async fn main() -> Result<(), labthings::server::ConfigError> {
    // No logging set up here: the framework logs to the terminal (`RUST_LOG` to filter). An
    // error prints as one sentence (a `ConfigError`'s `Debug` is its message).
    labthings::run(&things::registry(), things::MICROSCOPE_CONFIG).await
}
