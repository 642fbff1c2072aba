//! A USB webcam (or capture card) served over HTTP, through Video4Linux2: Linux only.
//!
//! ```text
//! cargo run --example webcam --features v4l2 -- --device /dev/video0 [--format MJPG]
//!     [--width 1280 --height 720 --fps 30] [--host 127.0.0.1] [--port 5000]
//! ```
//!
//! Then open <http://127.0.0.1:5000/> for the web UI, or the stream alone at
//! <http://127.0.0.1:5000/camera/mjpeg_stream>. Its modes, the device's controls (exposure,
//! gain, white balance, ...) and the mode in use are properties of `camera`. `v4l2-ctl
//! --list-devices` (Debian's v4l-utils) lists the cameras plugged in.

use std::ffi::OsString;

use labthings::v4l2::V4l2Camera;

#[path = "support/args.rs"]
mod args;

use args::take;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let mut kwargs = serde_json::Map::new();
    let device = take(&mut args, "--device").unwrap_or_else(|| "/dev/video0".to_owned());
    kwargs.insert("device".into(), device.into());
    if let Some(format) = take(&mut args, "--format") {
        kwargs.insert("format".into(), format.into());
    }
    for (flag, key) in [("--width", "width"), ("--height", "height")] {
        if let Some(value) = take(&mut args, flag) {
            let value: u32 = value
                .parse()
                .map_err(|_| anyhow::anyhow!("{flag} takes a whole number, not {value:?}"))?;
            kwargs.insert(key.into(), value.into());
        }
    }
    if let Some(value) = take(&mut args, "--fps") {
        let fps: f64 = value
            .parse()
            .map_err(|_| anyhow::anyhow!("--fps takes a number, not {value:?}"))?;
        kwargs.insert("fps".into(), fps.into());
    }
    let command_line =
        labthings::server::CommandLine::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let config = serde_json::json!({
        "things": {"camera": {"class": "v4l2_camera", "kwargs": kwargs}}
    });
    let registry = V4l2Camera::register(labthings::server::ThingRegistry::new());
    labthings::server::run_with(&registry, &config.to_string(), command_line).await?;
    Ok(())
}
