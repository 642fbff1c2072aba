//! The camera examples' own flags (`--device`, `--width`, ...), taken out of the command line
//! before the rest goes to `labthings::server::CommandLine`.

use std::ffi::OsString;

/// Removes `--name VALUE` (or `--name=VALUE`) from `args`, returning the value.
pub fn take(args: &mut Vec<OsString>, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    let position = args
        .iter()
        .position(|a| a == name || a.to_string_lossy().starts_with(&prefix))?;
    let arg = args.remove(position).to_string_lossy().into_owned();
    match arg.strip_prefix(&prefix) {
        Some(value) => Some(value.to_owned()),
        None if position < args.len() => Some(args.remove(position).to_string_lossy().into_owned()),
        None => None,
    }
}
