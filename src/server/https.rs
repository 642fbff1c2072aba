//! HTTPS settings of a server: where its certificate comes from ([`TlsSetting`], the `tls`
//! key of a configuration file), and (feature `tls`) the certificate itself, read or made.

#[cfg(feature = "tls")]
use std::path::Path;
use std::path::PathBuf;

use serde::Deserialize;

#[cfg(feature = "tls")]
use super::error::ServerError;

/// Where a server's HTTPS certificate comes from (the `tls` key of a configuration file).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSetting {
    /// The certificate chain, PEM (the server's certificate first).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key, PEM.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A self-signed certificate, made on first start and kept in `<settings folder>/tls/`.
    #[serde(default)]
    pub self_signed: bool,
}

impl TlsSetting {
    /// A certificate and key from PEM files.
    pub fn files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: Some(cert.into()),
            key: Some(key.into()),
            self_signed: false,
        }
    }

    /// A self-signed certificate kept in the settings folder.
    pub fn self_signed() -> Self {
        Self {
            self_signed: true,
            ..Self::default()
        }
    }
}

/// The certificate to serve, if HTTPS was asked for: given, read from files, or
/// self-signed in the settings folder.
#[cfg(feature = "tls")]
pub(crate) fn resolve(
    given: Option<crate::serve::TlsConfig>,
    setting: Option<TlsSetting>,
    settings_folder: Option<&Path>,
    hosts: &[String],
) -> Result<Option<crate::serve::TlsConfig>, ServerError> {
    use crate::serve::TlsConfig;
    if let Some(config) = given {
        return Ok(Some(config));
    }
    let Some(setting) = setting else {
        return Ok(None);
    };
    let tls = match (&setting.cert, &setting.key, setting.self_signed) {
        (Some(cert), Some(key), false) => TlsConfig::from_pem_files(cert, key),
        (None, None, true) => {
            let Some(folder) = settings_folder else {
                return Err(ServerError::Tls(
                    "a self-signed certificate is kept in the settings folder, and this \
                     server has none: set `settings_folder`, or give `cert` and `key` files"
                        .into(),
                ));
            };
            TlsConfig::self_signed(&folder.join("tls"), &certificate_names(hosts))
        }
        _ => {
            return Err(ServerError::Tls(
                "give either both `cert` and `key` (PEM files) or `self_signed: true`".into(),
            ));
        }
    };
    tls.map(Some)
        .map_err(|error| ServerError::Tls(error.to_string()))
}

/// The names a self-signed certificate is made for: the host's own name (and its `.local`
/// name, as mDNS announces it), the names in `allow_hosts` and the public URL's host.
#[cfg(feature = "tls")]
fn certificate_names(hosts: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(host) = super::discovery::host_name() {
        names.push(format!("{host}.local"));
        names.push(host);
    }
    for host in hosts {
        let name = super::hosts::host_name(host);
        if name != "*" {
            names.push(name.to_owned());
        }
    }
    names
}
