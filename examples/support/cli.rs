//! Command-line flags and signals shared by the runnable examples.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use clap::{Arg, Command, value_parser};

/// Parses `--host` (default 127.0.0.1) and `--port` (default 5000).
pub fn bind_address(name: &'static str, about: &'static str) -> SocketAddr {
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
        .get_matches();
    let host = *matches.get_one::<IpAddr>("host").expect("has a default");
    let port = *matches.get_one::<u16>("port").expect("has a default");
    SocketAddr::new(host, port)
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
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
