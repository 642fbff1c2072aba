//! Discovery, as W3C WoT Discovery describes its introduction phase: what a client that knows
//! only the server's address finds at `/.well-known/wot`, and the host's own name.

#[cfg(any(feature = "tls", feature = "mdns"))]
/// This machine's host name (as `hostname` prints it), if it has one that can be a DNS label.
pub(crate) fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())?;
    let name = name.trim();
    let usable = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    usable.then(|| name.to_owned())
}
