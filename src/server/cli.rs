//! The command line of a labthings binary ([`CommandLine`]) and [`run`], which serves the
//! Things of a configuration file from it (feature `cli`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::config::{ConfigError, ServerConfig, ThingRegistry};
use super::options::ServerOptions;
use super::options::TlsOptions;

/// What a labthings binary's command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandLine {
    /// `--config FILE`: the configuration; none means the binary's built-in one.
    pub config: Option<PathBuf>,
    /// `--host` (default 127.0.0.1) and `--port` (default 5000).
    pub address: SocketAddr,
    /// `--tls-cert FILE --tls-key FILE`, or `--self-signed`: HTTPS, over the configuration
    /// file's `tls`.
    pub tls: Option<TlsOptions>,
    /// `--discovery` or `--no-discovery`: announce over mDNS or not, over the configuration
    /// file's `discovery`.
    pub discovery: Option<bool>,
    /// `--settings-folder DIR`, over the configuration file's `settings_folder`.
    pub settings_folder: Option<PathBuf>,
    /// `--data-folder DIR`, over the configuration file's `data_folder`.
    pub data_folder: Option<PathBuf>,
    /// `--public-url URL`, over the configuration file's `public_url`.
    pub public_url: Option<String>,
    /// `--directory URL`: register with this Thing Description Directory, over the
    /// configuration file's `directory.url` (its token: `LABTHINGS_DIRECTORY_TOKEN`).
    pub directory: Option<String>,
    /// `--directory-ttl SECONDS`, over the configuration file's `directory.ttl`.
    pub directory_ttl: Option<Duration>,
    /// `--lab-server URL` (repeated): servers the lab view shows, added to the configuration
    /// file's `lab.servers`.
    pub lab_servers: Vec<String>,
    /// `--config-schema`: print the JSON Schema of configuration files and exit.
    pub config_schema: bool,
}

impl CommandLine {
    /// Parses the command line from `args` (the first is the program name); `--help` lists
    /// every option.
    ///
    /// # Errors
    ///
    /// clap's error, which prints usage or `--help` text with `.exit()`.
    pub fn try_parse_from<I, S>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        use clap::{Arg, Command, value_parser};
        let matches = Command::new("labthings")
            .about("Serves laboratory instruments (Things) over HTTP")
            .arg(
                Arg::new("config")
                    .long("config")
                    .short('c')
                    .value_name("FILE")
                    .value_parser(value_parser!(PathBuf))
                    .help("Configuration file (JSON); default: the built-in one"),
            )
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
                Arg::new("tls-cert")
                    .long("tls-cert")
                    .value_name("FILE")
                    .requires("tls-key")
                    .value_parser(value_parser!(PathBuf))
                    .help("Serve HTTPS with this certificate chain (PEM)"),
            )
            .arg(
                Arg::new("tls-key")
                    .long("tls-key")
                    .value_name("FILE")
                    .requires("tls-cert")
                    .value_parser(value_parser!(PathBuf))
                    .help("The certificate's private key (PEM)"),
            )
            .arg(
                Arg::new("self-signed")
                    .long("self-signed")
                    .action(clap::ArgAction::SetTrue)
                    .conflicts_with("tls-cert")
                    .help(
                        "Serve HTTPS with a self-signed certificate, made once and kept in the \
                         settings folder; its fingerprint is printed at start",
                    ),
            )
            .arg(
                Arg::new("discovery")
                    .long("discovery")
                    .action(clap::ArgAction::SetTrue)
                    .overrides_with("no-discovery")
                    .help(
                        "Announce the server over mDNS as a _wot._tcp service, on the \
                         interfaces it listens on only",
                    ),
            )
            .arg(
                Arg::new("settings-folder")
                    .long("settings-folder")
                    .value_name("DIR")
                    .value_parser(value_parser!(PathBuf))
                    .help("Where settings are kept (default ./settings)"),
            )
            .arg(
                Arg::new("data-folder")
                    .long("data-folder")
                    .value_name("DIR")
                    .value_parser(value_parser!(PathBuf))
                    .help("Where recordings and other data are kept (default ./data)"),
            )
            .arg(
                Arg::new("public-url")
                    .long("public-url")
                    .value_name("URL")
                    .help("The URL clients reach the server at, for the links it writes"),
            )
            .arg(
                Arg::new("directory")
                    .long("directory")
                    .value_name("URL")
                    .help(
                        "Register every Thing with this W3C WoT Thing Description Directory \
                         (its bearer token, if it needs one: LABTHINGS_DIRECTORY_TOKEN)",
                    ),
            )
            .arg(
                Arg::new("directory-ttl")
                    .long("directory-ttl")
                    .value_name("SECONDS")
                    .value_parser(seconds)
                    .help(
                        "How long the directory keeps an entry not registered again (default 300)",
                    ),
            )
            .arg(
                Arg::new("lab-server")
                    .long("lab-server")
                    .value_name("URL")
                    .action(clap::ArgAction::Append)
                    .help("Another server the lab view (/lab_view/) shows; repeat for more"),
            )
            .arg(
                Arg::new("config-schema")
                    .long("config-schema")
                    .action(clap::ArgAction::SetTrue)
                    .help("Print the JSON Schema of configuration files, and exit"),
            )
            .arg(
                Arg::new("no-discovery")
                    .long("no-discovery")
                    .action(clap::ArgAction::SetTrue)
                    .overrides_with("discovery")
                    .help("Do not announce over mDNS, whatever the configuration says"),
            )
            .try_get_matches_from(args)?;
        let host = *matches.get_one::<IpAddr>("host").expect("has a default");
        let port = *matches.get_one::<u16>("port").expect("has a default");
        let tls = match (
            matches.get_one::<PathBuf>("tls-cert"),
            matches.get_one::<PathBuf>("tls-key"),
        ) {
            (Some(cert), Some(key)) => Some(TlsOptions::files(cert, key)),
            _ if matches.get_flag("self-signed") => Some(TlsOptions::self_signed()),
            _ => None,
        };
        Ok(Self {
            config: matches.get_one::<PathBuf>("config").cloned(),
            address: SocketAddr::new(host, port),
            tls,
            discovery: if matches.get_flag("discovery") {
                Some(true)
            } else if matches.get_flag("no-discovery") {
                Some(false)
            } else {
                None
            },
            settings_folder: matches.get_one::<PathBuf>("settings-folder").cloned(),
            data_folder: matches.get_one::<PathBuf>("data-folder").cloned(),
            public_url: matches.get_one::<String>("public-url").cloned(),
            directory: matches.get_one::<String>("directory").cloned(),
            directory_ttl: matches.get_one::<Duration>("directory-ttl").copied(),
            lab_servers: matches
                .get_many::<String>("lab-server")
                .map(|servers| servers.cloned().collect())
                .unwrap_or_default(),
            config_schema: matches.get_flag("config-schema"),
        })
    }

    /// Sets the options the command line gives over those of a configuration file.
    pub fn apply(&self, options: &mut ServerOptions) {
        if let Some(tls) = &self.tls {
            options.tls = Some(tls.clone());
        }
        if let Some(discovery) = self.discovery {
            options.discovery = discovery;
        }
        if let Some(folder) = &self.settings_folder {
            options.settings_folder = Some(folder.clone());
        }
        if let Some(folder) = &self.data_folder {
            options.data_folder = Some(folder.clone());
        }
        if let Some(url) = &self.public_url {
            options.public_url = Some(url.clone());
        }
        if let Some(url) = &self.directory {
            let directory = options
                .directory
                .take()
                .unwrap_or_else(|| super::DirectoryOptions::new(url.clone()));
            options.directory = Some(super::DirectoryOptions {
                url: url.clone(),
                ..directory
            });
        }
        if let (Some(ttl), Some(directory)) = (self.directory_ttl, options.directory.as_mut()) {
            directory.ttl = ttl;
        }
        options.lab.servers.extend(self.lab_servers.iter().cloned());
    }
}

/// A number of seconds (`2`, `0.5`), for `--directory-ttl`.
fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a number of seconds at least 0"))
}

/// Runs a labthings binary: parses the command line, loads `--config` (or `default_config`),
/// makes the Things with `registry`, and serves until Ctrl-C or SIGTERM.
///
/// # Errors
///
/// Any configuration, start-up or serving error, with the Thing it concerns.
pub async fn run(registry: &ThingRegistry, default_config: &str) -> Result<(), ConfigError> {
    let command_line =
        CommandLine::try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    run_with(registry, default_config, command_line).await
}

/// [`run`] with a command line the binary parsed itself: one that takes options of its own
/// (such as the webcam example's `--device`) removes them and passes the rest to
/// [`CommandLine::try_parse_from`].
///
/// # Errors
///
/// As [`run`].
pub async fn run_with(
    registry: &ThingRegistry,
    default_config: &str,
    command_line: CommandLine,
) -> Result<(), ConfigError> {
    if command_line.config_schema {
        let schema =
            serde_json::to_string_pretty(&ServerConfig::json_schema()).expect("a schema is JSON");
        println!("{schema}");
        return Ok(());
    }
    let mut config = match &command_line.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::from_json(default_config)?,
    };
    command_line.apply(&mut config.options);
    let server = registry.builder(&config)?.build()?;
    server.serve(command_line.address).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_defaults_and_flags() {
        let defaults = CommandLine::try_parse_from(["x"]).unwrap();
        assert_eq!(defaults.address, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(defaults.config, None);
        let given = CommandLine::try_parse_from([
            "x", "--config", "a.json", "--host", "0.0.0.0", "--port", "0",
        ])
        .unwrap();
        assert_eq!(given.config, Some(PathBuf::from("a.json")));
        assert_eq!(given.address, "0.0.0.0:0".parse().unwrap());
        assert!(CommandLine::try_parse_from(["x", "--port", "seventy"]).is_err());
        assert_eq!(defaults.tls, None);
        let files = CommandLine::try_parse_from(["x", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap();
        assert_eq!(files.tls, Some(TlsOptions::files("c.pem", "k.pem")));
        let own = CommandLine::try_parse_from(["x", "--self-signed"]).unwrap();
        assert_eq!(own.tls, Some(TlsOptions::self_signed()));
        assert!(CommandLine::try_parse_from(["x", "--tls-cert", "c.pem"]).is_err());
        assert_eq!(defaults.discovery, None);
        let on = CommandLine::try_parse_from(["x", "--discovery"]).unwrap();
        assert_eq!(on.discovery, Some(true));
        let off = CommandLine::try_parse_from(["x", "--discovery", "--no-discovery"]).unwrap();
        assert_eq!(off.discovery, Some(false));
    }

    #[test]
    fn bench_options_on_the_command_line_override_the_file() {
        let mut options = ServerOptions::default();
        CommandLine::try_parse_from(["x"])
            .unwrap()
            .apply(&mut options);
        assert_eq!(options.settings_folder, Some(PathBuf::from("settings")));
        let given = CommandLine::try_parse_from([
            "x",
            "--settings-folder",
            "/var/lib/scope",
            "--data-folder",
            "/srv/data",
            "--public-url",
            "https://lab.example/scope/",
            "--self-signed",
        ])
        .unwrap();
        given.apply(&mut options);
        assert_eq!(
            options.settings_folder,
            Some(PathBuf::from("/var/lib/scope"))
        );
        assert_eq!(options.data_folder, Some(PathBuf::from("/srv/data")));
        assert_eq!(
            options.public_url.as_deref(),
            Some("https://lab.example/scope/")
        );
        assert_eq!(options.tls, Some(TlsOptions::self_signed()));
        assert!(
            CommandLine::try_parse_from(["x", "--config-schema"])
                .unwrap()
                .config_schema
        );
    }
}
