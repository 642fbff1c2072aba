//! The certificate a server serves HTTPS with (feature `tls`): given, read from the files of
//! its [`TlsOptions`], or self-signed and kept in the settings folder.

#![cfg(feature = "tls")]

use std::path::Path;

use super::error::ServerError;
use super::options::TlsOptions;

/// The certificate to serve, if HTTPS was asked for: given, read from files, or
/// self-signed in the settings folder.
pub(crate) fn resolve(
    given: Option<crate::serve::TlsCertificate>,
    setting: Option<TlsOptions>,
    settings_folder: Option<&Path>,
    hosts: &[String],
) -> Result<Option<crate::serve::TlsCertificate>, ServerError> {
    use crate::serve::TlsCertificate;
    if let Some(config) = given {
        return Ok(Some(config));
    }
    let Some(setting) = setting else {
        return Ok(None);
    };
    let tls = match (&setting.cert, &setting.key, setting.self_signed) {
        (Some(cert), Some(key), false) => TlsCertificate::from_pem_files(cert, key),
        (None, None, true) => {
            let Some(folder) = settings_folder else {
                return Err(ServerError::Tls(
                    "a self-signed certificate is kept in the settings folder, and this \
                     server has none: set `settings_folder`, or give `cert` and `key` files"
                        .into(),
                ));
            };
            TlsCertificate::self_signed(&folder.join("tls"), &certificate_names(hosts))
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
