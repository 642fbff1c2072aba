//! The terminal log a server gets when its application set up none: what is served where, each
//! request, refusals, and settings problems, on standard error.
//!
//! [`init`] runs when a server is built and when it starts serving. It installs a `tracing`
//! subscriber that prints `info` and above (or what `RUST_LOG` says, such as
//! `RUST_LOG=labthings=debug` or `RUST_LOG=warn`) unless the application has already installed
//! its own; an application that wants its own format, file or filter installs it first, and
//! one that wants silence installs a subscriber that drops everything. Without the `log`
//! feature, nothing is installed.

/// Installs the terminal log unless a global `tracing` subscriber is already set.
pub(crate) fn init() {
    #[cfg(feature = "log")]
    if !tracing::dispatcher::has_been_set() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // Standard error through `eprint!`, which a test harness captures (and shows only
        // for failing tests), where writing to the stream itself would flood every test run.
        // Another thread may win the race to install a subscriber: then that one logs.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(tracing_subscriber::fmt::TestWriter::with_stderr)
            .try_init();
    }
}
