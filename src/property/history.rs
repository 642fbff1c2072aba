//! A property's history: a bounded record of `(timestamp, value)` samples, kept in memory by the
//! property itself (so `set` and `publish` from any thread add to it), served by the server as
//! JSON and CSV.
//!
//! The bound holds by construction: at most [`HistoryOptions::max_samples`] samples, none older
//! than [`HistoryOptions::max_age`], and changes closer together than the coalescing interval
//! merged into one sample (the newest value wins, so the newest value is always the last
//! sample).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history_log::csv_field;

/// How many samples a history keeps unless told otherwise.
pub const DEFAULT_HISTORY_SAMPLES: usize = 10_000;

/// How much of a property's past the server keeps: the length in samples, in time, or both, and
/// how close together two changes may be before they are merged.
///
/// Set it with `#[property(history = "10 min")]` (a duration, as `"30 s"`, `"2 h"`) or
/// `#[property(history = 1000)]` (a number of samples), with
/// `history_interval = "100 ms"` to coalesce faster changes, or in the configuration file's
/// `history` option, which overrides the attribute.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use labthings::property::HistoryOptions;
///
/// let ten_minutes = HistoryOptions::parse("10 min").unwrap();
/// assert_eq!(ten_minutes.max_age, Some(Duration::from_secs(600)));
/// assert_eq!(ten_minutes.max_samples, 10_000);
/// // Ten minutes in 10 000 samples: changes are kept at most every 60 ms.
/// assert_eq!(ten_minutes.interval(), Duration::from_millis(60));
///
/// let last_thousand = HistoryOptions::parse("1000").unwrap();
/// assert_eq!((last_thousand.max_samples, last_thousand.max_age), (1000, None));
/// assert_eq!(last_thousand.interval(), Duration::ZERO);
///
/// let error = HistoryOptions::parse("10 parsecs").unwrap_err();
/// assert!(error.contains("10 parsecs"), "{error}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HistoryOptions {
    /// The most samples kept (the oldest go first). Default 10 000.
    #[serde(default = "default_samples")]
    #[schemars(range(min = 1))]
    pub max_samples: usize,
    /// How long samples are kept, in seconds; `null` keeps `max_samples` whatever their age.
    #[serde(
        default,
        deserialize_with = "crate::serve::seconds::option::deserialize"
    )]
    #[schemars(with = "Option<f64>", range(min = 0))]
    pub max_age: Option<Duration>,
    /// Changes closer than this to the sample before them (seconds) are merged into one sample
    /// that keeps the newest value. Default: `max_age / max_samples`, so that the time bound is
    /// reachable at any rate of change; none (every change kept) without `max_age`.
    #[serde(
        default,
        deserialize_with = "crate::serve::seconds::option::deserialize"
    )]
    #[schemars(with = "Option<f64>", range(min = 0))]
    pub min_interval: Option<Duration>,
    /// Also append every sample to `<data folder>/history/<thing>/<property>.csv`, rotated at
    /// 16 MiB with four old files kept. Default off.
    #[serde(default)]
    pub log: bool,
}

fn default_samples() -> usize {
    DEFAULT_HISTORY_SAMPLES
}

impl HistoryOptions {
    /// The last `count` changes, whatever their age.
    pub fn samples(count: usize) -> Self {
        Self {
            max_samples: count.max(1),
            max_age: None,
            min_interval: None,
            log: false,
        }
    }

    /// The changes of the last `age`, in at most [`DEFAULT_HISTORY_SAMPLES`] samples.
    pub fn duration(age: Duration) -> Self {
        Self {
            max_samples: DEFAULT_HISTORY_SAMPLES,
            max_age: Some(age),
            min_interval: None,
            log: false,
        }
    }

    /// At most `count` samples.
    pub fn with_max_samples(mut self, count: usize) -> Self {
        self.max_samples = count.max(1);
        self
    }

    /// Also appends every sample to a CSV file in the data folder
    /// (`#[property(history = .., history_log)]`).
    pub fn with_log(mut self, log: bool) -> Self {
        self.log = log;
        self
    }

    /// Merges changes closer together than `interval`.
    pub fn with_min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = Some(interval);
        self
    }

    /// What the `history` attribute says: a number of samples (`"1000"`) or a duration
    /// (`"10 min"`, `"30s"`, `"1h 30min"`).
    ///
    /// # Errors
    ///
    /// A sentence naming the text, if it is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(count) = text.parse::<usize>() {
            return if count == 0 {
                Err("a history keeps at least one sample, not 0".to_owned())
            } else {
                Ok(Self::samples(count))
            };
        }
        match humantime::parse_duration(text) {
            Ok(age) if !age.is_zero() => Ok(Self::duration(age)),
            Ok(_) => Err(format!("a history cannot be `{text}` long")),
            Err(error) => Err(format!(
                "`{text}` is neither a number of samples nor a duration such as \"10 min\" ({error})"
            )),
        }
    }

    /// The coalescing interval in effect: [`min_interval`](Self::min_interval) if set, else
    /// `max_age / max_samples`, else zero.
    pub fn interval(&self) -> Duration {
        self.min_interval.unwrap_or_else(|| {
            self.max_age.map_or(Duration::ZERO, |age| {
                age / u32::try_from(self.max_samples).unwrap_or(u32::MAX)
            })
        })
    }
}

/// One sample of a property's history: when the server stored the value, and the value.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct HistorySample {
    /// When the value was stored, by the server's clock (RFC 3339, UTC, microseconds).
    pub timestamp: DateTime<Utc>,
    /// The value, as the property's `GET` returns it.
    pub value: Value,
}

/// The samples of one property, oldest first; shared by the property and the server.
#[derive(Debug)]
pub(crate) struct History {
    pub(crate) options: HistoryOptions,
    interval: chrono::TimeDelta,
    max_age: Option<chrono::TimeDelta>,
    samples: Mutex<VecDeque<HistorySample>>,
    /// Where finished samples are appended on disk, if `log` is on.
    log: Option<super::history_log::HistoryLog>,
}

impl History {
    pub(crate) fn new(options: HistoryOptions) -> Self {
        let delta = |duration: Duration| {
            chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
        };
        Self {
            options,
            interval: delta(options.interval()),
            max_age: options.max_age.map(delta),
            samples: Mutex::new(VecDeque::with_capacity(options.max_samples.min(1024))),
            log: None,
        }
    }

    /// Appends finished samples to `log` too.
    pub(crate) fn with_log(mut self, log: super::history_log::HistoryLog) -> Self {
        self.log = Some(log);
        self
    }

    /// How the disk log is doing, if there is one.
    pub(crate) fn log_status(&self) -> Option<super::history_log::LogStatus> {
        self.log
            .as_ref()
            .map(super::history_log::HistoryLog::status)
    }

    /// Stores `value` now.
    pub(crate) fn push(&self, value: &Value) {
        self.push_at(Utc::now(), value);
    }

    /// Stores `value` at `now`, or later if the clock went back: timestamps strictly increase.
    fn push_at(&self, now: DateTime<Utc>, value: &Value) {
        let tick = chrono::TimeDelta::microseconds(1);
        let now = now.trunc_subsecs_micros();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let len = samples.len();
        let timestamp = match samples.back() {
            Some(last) if now <= last.timestamp => last.timestamp + tick,
            _ => now,
        };
        // The newest sample takes each new value while it is less than `interval` after the
        // one before it; once it is that far, it stays and the next value is a new sample.
        // Samples are so `interval` apart, and the newest value is always the last.
        let merge =
            len >= 2 && samples[len - 1].timestamp - samples[len - 2].timestamp < self.interval;
        if merge {
            let last = samples.back_mut().expect("two samples");
            last.timestamp = timestamp;
            last.value = value.clone();
        } else {
            // The sample before is final now: it goes to the disk log.
            if let (Some(log), Some(last)) = (&self.log, samples.back()) {
                log.send(last.timestamp, last.value.clone());
            }
            if samples.len() == self.options.max_samples {
                samples.pop_front();
            }
            samples.push_back(HistorySample {
                timestamp,
                value: value.clone(),
            });
        }
        if let Some(max_age) = self.max_age {
            // Keep the newest sample whatever its age: it is the current value.
            while samples.len() > 1 && timestamp - samples[0].timestamp > max_age {
                samples.pop_front();
            }
        }
    }

    /// The samples newer than `since` (all without it), oldest first.
    pub(crate) fn since(&self, since: Option<DateTime<Utc>>) -> Vec<HistorySample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let start = since.map_or(0, |since| {
            samples.partition_point(|sample| sample.timestamp <= since)
        });
        samples.range(start..).cloned().collect()
    }

    /// How many samples are kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.samples.lock().unwrap().len()
    }
}

trait TruncMicros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl TruncMicros for DateTime<Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::DurationRound::duration_trunc(self, chrono::TimeDelta::microseconds(1))
            .unwrap_or(self)
    }
}

/// The samples as CSV: a `timestamp` column, then one column per scalar in the value (the
/// value itself for a number, string or boolean; `name.x` for a field, `name[0]` for an
/// element), every column any sample has, in the order they first appear. Missing cells are
/// empty.
pub(crate) fn to_csv(name: &str, unit: Option<&str>, samples: &[HistorySample]) -> String {
    let mut columns: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut paths = Vec::new();
    for sample in samples {
        leaf_paths(&sample.value, String::new(), &mut paths);
        for path in paths.drain(..) {
            if seen.insert(path.clone()) {
                columns.push(path);
            }
        }
    }
    let mut out = String::from("timestamp");
    for path in &columns {
        let mut header = format!("{name}{path}");
        if let Some(unit) = unit {
            header.push_str(&format!(" [{unit}]"));
        }
        out.push(',');
        out.push_str(&csv_field(&header));
    }
    out.push_str("\r\n");
    for sample in samples {
        out.push_str(
            &sample
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        for path in &columns {
            out.push(',');
            if let Some(cell) = at_path(&sample.value, path) {
                out.push_str(&csv_field(&cell));
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// The paths of the scalars of `value` (`""` for a scalar, `.x`, `[0]`, `.a[1].b`).
fn leaf_paths(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                leaf_paths(value, format!("{prefix}.{key}"), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, value) in items.iter().enumerate() {
                leaf_paths(value, format!("{prefix}[{index}]"), out);
            }
        }
        _ => out.push(prefix),
    }
}

/// The scalar at `path` in `value`, as CSV text; `None` if it is not there or not a scalar.
fn at_path(value: &Value, path: &str) -> Option<String> {
    let mut value = value;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            value = value.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            value = value.get(after[..end].parse::<usize>().ok()?)?;
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    match value {
        Value::Null => Some(String::new()),
        Value::String(text) => Some(text.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn the_sample_bound_holds_and_timestamps_increase() {
        let history = History::new(HistoryOptions::samples(100));
        for i in 0..1000 {
            // The same instant every time: the timestamps must still increase.
            history.push_at(at(0), &json!(i));
        }
        let samples = history.since(None);
        assert_eq!(samples.len(), 100);
        assert_eq!(samples.last().unwrap().value, json!(999));
        assert!(samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }

    #[test]
    fn changes_within_the_interval_merge_and_the_newest_value_is_kept() {
        let history =
            History::new(HistoryOptions::samples(100).with_min_interval(Duration::from_secs(1)));
        for ms in (0..5000).step_by(100) {
            history.push_at(at(ms), &json!(ms));
        }
        let samples = history.since(None);
        // Each sample at least a second after the one before, and the newest value last.
        let values: Vec<_> = samples.iter().map(|s| s.value.clone()).collect();
        assert_eq!(
            values,
            [
                json!(0),
                json!(1000),
                json!(2000),
                json!(3000),
                json!(4000),
                json!(4900)
            ]
        );
        assert!(
            samples[..samples.len() - 1]
                .windows(2)
                .all(|w| w[1].timestamp - w[0].timestamp >= chrono::TimeDelta::seconds(1))
        );
    }

    #[test]
    fn old_samples_go_but_the_newest_stays() {
        let history = History::new(HistoryOptions::duration(Duration::from_secs(10)));
        history.push_at(at(0), &json!(1));
        history.push_at(at(5_000), &json!(2));
        history.push_at(at(12_000), &json!(3));
        let values: Vec<_> = history.since(None).into_iter().map(|s| s.value).collect();
        assert_eq!(values, [json!(2), json!(3)]);
        history.push_at(at(100_000), &json!(4));
        assert_eq!(history.len(), 1, "only the current value is left");
    }

    #[test]
    fn since_returns_only_newer_samples() {
        let history = History::new(HistoryOptions::samples(10));
        for i in 0..5 {
            history.push_at(at(i * 1000), &json!(i));
        }
        let newer = history.since(Some(at(2000)));
        assert_eq!(newer.len(), 2);
        assert_eq!(newer[0].value, json!(3));
    }

    #[test]
    fn csv_has_a_column_per_scalar_and_quotes_what_needs_it() {
        let samples = vec![
            HistorySample {
                timestamp: at(0),
                value: json!({"x": 1, "y": [2, 3], "label": "a,b"}),
            },
            HistorySample {
                timestamp: at(1),
                value: json!({"x": 4, "y": [5], "label": "say \"hi\""}),
            },
        ];
        let csv = to_csv("position", Some("µm"), &samples);
        let lines: Vec<_> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "timestamp,position.x [µm],position.y[0] [µm],position.y[1] [µm],position.label [µm]"
        );
        assert_eq!(lines[1], "2027-01-15T08:00:00.000000Z,1,2,3,\"a,b\"");
        assert_eq!(
            lines[2],
            "2027-01-15T08:00:00.001000Z,4,5,,\"say \"\"hi\"\"\""
        );
        let scalar = to_csv(
            "t",
            None,
            &samples[..1]
                .iter()
                .map(|s| HistorySample {
                    timestamp: s.timestamp,
                    value: json!(20.5),
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            scalar,
            "timestamp,t\r\n2027-01-15T08:00:00.000000Z,20.5\r\n"
        );
    }

    #[test]
    fn parse_says_what_is_wrong() {
        assert!(
            HistoryOptions::parse("0")
                .unwrap_err()
                .contains("at least one")
        );
        assert!(HistoryOptions::parse("0 s").is_err());
        assert_eq!(
            HistoryOptions::parse("1h 30min").unwrap().max_age,
            Some(Duration::from_secs(5400))
        );
    }
}
