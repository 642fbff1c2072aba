//! Reading the headers a client states its wishes in, as RFC 9110 says: `Accept` with quality
//! values (media types compared case-insensitively, `q=0` meaning "not this", `type/*` and
//! `*/*` ranges, the most specific range deciding), and byte `Range`s as a file server takes
//! them (an unknown unit ignored, a last position past any file clamped).

/// The offered media type the `Accept` header prefers: the one with the highest quality above
/// zero, the first offered winning ties. `None` when the header is absent or accepts none of
/// them (the caller then serves its default).
pub(crate) fn preferred<'a>(accept: Option<&str>, offered: &[&'a str]) -> Option<&'a str> {
    let ranges: Vec<mime::Mime> = accept?
        .split(',')
        .filter_map(|range| range.trim().parse().ok())
        .collect();
    let mut best: Option<(&'a str, f32)> = None;
    for &candidate in offered {
        let Ok(candidate_type) = candidate.parse::<mime::Mime>() else {
            continue;
        };
        let quality = quality_of(&ranges, &candidate_type);
        if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((candidate, quality));
        }
    }
    best.map(|(candidate, _)| candidate)
}

/// The quality the most specific matching range gives `candidate` (0 if none matches).
fn quality_of(ranges: &[mime::Mime], candidate: &mime::Mime) -> f32 {
    let mut found: Option<(u8, f32)> = None;
    for range in ranges {
        let specificity = if range.type_() == mime::STAR && range.subtype() == mime::STAR {
            1
        } else if range.type_() == candidate.type_() && range.subtype() == mime::STAR {
            2
        } else if range.type_() == candidate.type_() && range.subtype() == candidate.subtype() {
            3
        } else {
            continue;
        };
        let quality = range
            .get_param("q")
            .and_then(|q| q.as_str().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        if found.is_none_or(|(s, _)| specificity > s) {
            found = Some((specificity, quality));
        }
    }
    found.map_or(0.0, |(_, quality)| quality)
}

/// A `Range` header as a file server should take it: `None` to ignore it (a unit other than
/// `bytes`, RFC 9110 §14.2), else the byte ranges with any last position too large to be a
/// number clamped to the end of the file (`bytes=0-99999999999999999999999` is `bytes=0-`).
pub(crate) fn byte_ranges(range: &str) -> Option<String> {
    let (unit, specs) = range.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let specs: Vec<String> = specs
        .split(',')
        .map(|spec| {
            let spec = spec.trim();
            match spec.split_once('-') {
                Some((first, last))
                    if !first.is_empty()
                        && !last.is_empty()
                        && last.bytes().all(|b| b.is_ascii_digit())
                        && last.parse::<u64>().is_err() =>
                {
                    format!("{first}-")
                }
                _ => spec.to_owned(),
            }
        })
        .collect();
    Some(format!("bytes={}", specs.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NPY: &str = "application/x-npy";
    const TIFF: &str = "image/tiff";

    #[test]
    fn accept_reads_quality_case_and_ranges() {
        let offered = [NPY, TIFF];
        assert_eq!(preferred(None, &offered), None);
        assert_eq!(preferred(Some("image/tiff"), &offered), Some(TIFF));
        assert_eq!(preferred(Some("IMAGE/TIFF"), &offered), Some(TIFF));
        assert_eq!(preferred(Some("image/tiff;q=0"), &offered), None);
        assert_eq!(preferred(Some("image/tiff;q=0, */*"), &offered), Some(NPY));
        assert_eq!(preferred(Some("image/*"), &offered), Some(TIFF));
        assert_eq!(
            preferred(Some("image/tiff;q=0.5, application/x-npy"), &offered),
            Some(NPY)
        );
        assert_eq!(
            preferred(Some("application/x-npy;q=0.2, image/tiff;q=0.9"), &offered),
            Some(TIFF)
        );
        assert_eq!(preferred(Some("*/*"), &offered), Some(NPY));
        assert_eq!(preferred(Some("text/html"), &offered), None);
    }

    #[test]
    fn ranges_clamp_an_overlong_end_and_ignore_other_units() {
        assert_eq!(
            byte_ranges("bytes=0-99999999999999999999999").as_deref(),
            Some("bytes=0-")
        );
        assert_eq!(byte_ranges("bytes=0-99").as_deref(), Some("bytes=0-99"));
        assert_eq!(byte_ranges("bytes=-500").as_deref(), Some("bytes=-500"));
        assert_eq!(byte_ranges("items=0-1"), None);
        assert_eq!(byte_ranges("nonsense"), None);
    }
}
