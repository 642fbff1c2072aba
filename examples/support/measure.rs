//! What both benchmark programs measure of a server process, from `/proc`: its CPU time and
//! peak memory; and the percentiles of what they time.
#![allow(dead_code)]

use anyhow::Context as _;

/// CPU time of every thread of the process, in seconds, to the nanosecond (from the first field
/// of each `/proc/PID/task/TID/schedstat`, not the 10 ms ticks of `/proc/PID/stat`).
pub fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let mut nanos: u64 = 0;
    for task in
        std::fs::read_dir(format!("/proc/{pid}/task")).context("reading the server's threads")?
    {
        let path = task?.path().join("schedstat");
        // A thread may end between listing and reading; it no longer counts.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        nanos += text
            .split_whitespace()
            .next()
            .context("a schedstat line")?
            .parse::<u64>()?;
    }
    Ok(nanos as f64 / 1e9)
}

/// The peak resident memory of the process (`VmHWM`), in KiB.
pub fn peak_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("a number")?
        .parse()?)
}

/// The value at quantile `q` (0 to 1) of `values`, which it sorts; `None` if empty.
pub fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    Some(values[rank])
}
