//! Command-line flags shared by the runnable examples.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Arg, Command, value_parser};

pub struct Args {
    pub address: SocketAddr,
    pub settings_folder: Option<PathBuf>,
}

impl Args {
    /// Parses `--host` (default 127.0.0.1), `--port` (default 5000) and `--settings-folder`.
    pub fn parse(name: &'static str, about: &'static str) -> Self {
        let matches = Command::new(name)
            .about(about)
            .arg(
                Arg::new("host")
                    .long("host")
                    .value_name("ADDRESS")
                    .default_value("127.0.0.1")
                    .value_parser(value_parser!(IpAddr))
                    .help("Address to listen on (0.0.0.0 for every interface)"),
            )
            .arg(
                Arg::new("port")
                    .long("port")
                    .value_name("PORT")
                    .default_value("5000")
                    .value_parser(value_parser!(u16))
                    .help("Port to listen on (0 picks a free one)"),
            )
            .arg(
                Arg::new("settings-folder")
                    .long("settings-folder")
                    .value_name("DIR")
                    .value_parser(value_parser!(PathBuf))
                    .help("Keep settings in DIR/<thing>/settings.json (default: not kept)"),
            )
            .get_matches();
        let host = *matches.get_one::<IpAddr>("host").expect("has a default");
        let port = *matches.get_one::<u16>("port").expect("has a default");
        Self {
            address: SocketAddr::new(host, port),
            settings_folder: matches.get_one::<PathBuf>("settings-folder").cloned(),
        }
    }
}

/// Logs to stderr, `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
