//! A GenICam camera (GigE Vision, USB3 Vision) served over HTTP, through Aravis: Linux only.
//!
//! ```text
//! cargo run --example genicam --features aravis -- [--device ID_OR_ADDRESS | --fake]
//!     [--feature BlackLevel ...] [--host 127.0.0.1] [--port 5000] [--config FILE]
//! ```
//!
//! `--fake` serves Aravis's own fake camera (no hardware); `--device` takes a camera's id as
//! `arv-tool-0.8` lists it, or its IP address; with neither, the first camera found. Then open
//! <http://127.0.0.1:5000/> for the web UI, or the stream alone at
//! <http://127.0.0.1:5000/camera/mjpeg_stream>. The camera's features (pixel format,
//! exposure, gain, region of interest, binning, frame rate, triggers) are properties of
//! `camera`; `--feature NAME` (repeatable) serves another.

use std::ffi::OsString;

use labthings::genicam::GenicamCamera;

#[path = "support/args.rs"]
mod args;

use args::take;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let mut kwargs = serde_json::Map::new();
    if let Some(position) = args.iter().position(|a| a == "--fake") {
        args.remove(position);
        kwargs.insert("fake".into(), true.into());
    }
    if let Some(device) = take(&mut args, "--device") {
        kwargs.insert("device".into(), device.into());
    }
    let mut features = Vec::new();
    while let Some(feature) = take(&mut args, "--feature") {
        features.push(serde_json::Value::from(feature));
    }
    if !features.is_empty() {
        kwargs.insert("features".into(), features.into());
    }
    if let Some(value) = take(&mut args, "--idle-seconds") {
        let seconds: f64 = value
            .parse()
            .map_err(|_| anyhow::anyhow!("--idle-seconds takes a number, not {value:?}"))?;
        kwargs.insert("idle_seconds".into(), seconds.into());
    }
    let command_line =
        labthings::server::CommandLine::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let config = serde_json::json!({
        "things": {"camera": {"class": "genicam_camera", "kwargs": kwargs}}
    });
    let registry = GenicamCamera::register(labthings::server::ThingRegistry::new());
    labthings::server::run_with(&registry, &config.to_string(), command_line).await?;
    Ok(())
}
