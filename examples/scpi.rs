//! A bench power supply that speaks SCPI over a serial line, served with labthings: the recipe
//! of the guide's "A bench instrument: SCPI over a serial line".
//!
//! ```text
//! cargo run --example scpi -- --serial /dev/ttyUSB0 [--config FILE] [--host ..] [--port ..]
//! ```
//!
//! Its Thing is `support/scpi.rs`. Without an instrument at hand, `tests/it/scpi.rs` runs it
//! against a simulated one on a pseudo-terminal.

#[path = "support/scpi.rs"]
mod scpi;

/// The Thing type a configuration file can name, with its arguments.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerSupplyArgs {
    /// The serial port.
    serial: String,
}

#[tokio::main]
async fn main() -> Result<(), labthings::server::ConfigError> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let serial = match args.iter().position(|arg| arg == "--serial") {
        Some(at) if at + 1 < args.len() => {
            let path = args.remove(at + 1).to_string_lossy().into_owned();
            args.remove(at);
            path
        }
        _ => "/dev/ttyUSB0".to_owned(),
    };
    let command_line =
        labthings::server::CommandLine::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let registry = labthings::server::ThingRegistry::new()
        .register("scpi_power_supply", |args: PowerSupplyArgs, _| {
            Ok(scpi::PowerSupply::new(args.serial))
        });
    let config = serde_json::json!({
        "things": {"psu": {"class": "scpi_power_supply", "kwargs": {"serial": serial}}}
    });
    labthings::server::run_with(&registry, &config.to_string(), command_line).await
}
