//! An incremental, tolerant parser for `multipart/x-mixed-replace` bodies.
//!
//! About 470 lines of parser and 270 of tests (the quirks of real cameras and servers, and a
//! property test that any split of the input gives the same parts), kept beside it.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

/// The largest part [`MultipartParser`] buffers unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_PART_SIZE: usize = 16 * 1024 * 1024;

/// The longest header section a part may have before the parser gives up on the part.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The most header lines a part may have before the parser gives up on the part.
const MAX_HEADERS: usize = 64;

/// The longest line the parser keeps while looking for a delimiter; longer junk is dropped.
const MAX_JUNK_LINE: usize = 64 * 1024;

/// Why a `Content-Type` cannot be parsed as a multipart stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BoundaryError {
    /// The media type is not `multipart/*`.
    #[error("`{0}` is not a multipart media type")]
    NotMultipart(String),
    /// The media type has no `boundary` parameter.
    #[error("`{0}` has no `boundary` parameter")]
    Missing(String),
    /// The boundary is empty, or only dashes.
    #[error("the multipart boundary `{0}` is empty")]
    Empty(String),
}

/// One part of a multipart body: its headers and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The part's headers; names are case-insensitive.
    pub headers: HeaderMap,
    /// The part's body, without the line break that precedes the next delimiter.
    pub body: Bytes,
}

impl Part {
    /// A header's value as text, if the part has it and it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok().map(str::trim)
    }
}

/// What [`MultipartParser::take_line`] found.
enum Line {
    Whole(Bytes),
    Incomplete,
    TooLong,
}

/// What the parser is doing with the bytes at the front of its buffer.
#[derive(Debug)]
enum State {
    /// Looking for a delimiter line; anything else (preamble, epilogue, junk) is dropped.
    Seek,
    /// Reading the header lines of a part.
    Headers(HeaderMap),
    /// Reading a part's body of known length.
    Sized(HeaderMap, usize),
    /// Reading a part's body up to the next delimiter; `scanned` bytes hold none.
    Delimited(HeaderMap, usize),
    /// Dropping the rest of a part too large to keep: `remaining` bytes of known length.
    SkipSized(usize),
    /// Dropping the rest of a part too large to keep, up to the next delimiter.
    SkipDelimited,
}

/// An incremental parser for `multipart/x-mixed-replace` (and any other multipart) bodies.
///
/// Feed it bytes as they arrive with [`push`](Self::push), then take complete parts with
/// [`next_part`](Self::next_part) until it returns `None`. Any split of the bytes across pushes
/// gives the same parts. It accepts what real MJPEG servers send, not only what RFC 2046 says:
///
/// - the boundary with or without a leading `--` (`boundary=--frame` sent as `--frame`), quoted
///   or not;
/// - parts with `Content-Length` (the part is complete as soon as its bytes are in, so there is
///   no wait for the next delimiter) or without (the part ends at the next delimiter);
/// - CRLF or bare LF line breaks; a preamble before the first delimiter; a closing delimiter;
///   junk between parts; header names in any case; a part with no header section at all that
///   starts straight with a JPEG.
///
/// A part larger than the maximum part size is dropped and counted, never buffered in full. At
/// the end of the input call [`finish`](Self::finish): it returns a last part that had no
/// delimiter after it, if that part is a complete JPEG.
///
/// # Examples
///
/// ```
/// use labthings::client::MultipartParser;
///
/// let mut parser =
///     MultipartParser::from_content_type("multipart/x-mixed-replace; boundary=frame").unwrap();
/// parser.push(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nJPEG\r\n--fr");
/// let part = parser.next_part().unwrap();
/// assert_eq!(part.header("content-type"), Some("image/jpeg"));
/// assert_eq!(&part.body[..], b"JPEG");
/// assert!(parser.next_part().is_none());
/// ```
#[derive(Debug)]
pub struct MultipartParser {
    /// The boundary without any leading dashes.
    core: Vec<u8>,
    buffer: BytesMut,
    state: State,
    max_part_size: usize,
    too_large: u64,
    closed: bool,
    /// Dropping the rest of a line that was too long.
    skip_line: bool,
}

impl MultipartParser {
    /// A parser for parts separated by `boundary` (as given in the `Content-Type`, quotes
    /// removed; a leading `--` is accepted).
    pub fn new(boundary: &str) -> Result<Self, BoundaryError> {
        let core = boundary.trim().trim_start_matches('-');
        if core.is_empty() {
            return Err(BoundaryError::Empty(boundary.to_owned()));
        }
        Ok(Self {
            core: core.as_bytes().to_vec(),
            buffer: BytesMut::new(),
            state: State::Seek,
            max_part_size: DEFAULT_MAX_PART_SIZE,
            too_large: 0,
            closed: false,
            skip_line: false,
        })
    }

    /// A parser for a body of this `Content-Type`, e.g.
    /// `multipart/x-mixed-replace; boundary="frame"`.
    pub fn from_content_type(content_type: &str) -> Result<Self, BoundaryError> {
        Self::new(&boundary_of(content_type)?)
    }

    /// Sets the largest part kept, in bytes; larger parts are dropped and counted in
    /// [`too_large`](Self::too_large). The default is [`DEFAULT_MAX_PART_SIZE`].
    #[must_use]
    pub fn max_part_size(mut self, bytes: usize) -> Self {
        self.max_part_size = bytes;
        self
    }

    /// How many parts were dropped for being larger than the maximum part size.
    pub fn too_large(&self) -> u64 {
        self.too_large
    }

    /// Whether a closing delimiter (`--boundary--`) has been seen. The parser still reads parts
    /// that follow one, as some servers carry on regardless.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How many bytes the parser holds: at most about the maximum part size.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Adds bytes that arrived. Take the parts they complete with
    /// [`next_part`](Self::next_part).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Ends the input: returns a part still open at the end if it looks complete (a JPEG that
    /// ends with its end-of-image marker), after any parts still to be taken with
    /// [`next_part`](Self::next_part).
    pub fn finish(&mut self) -> Option<Part> {
        // A delimiter line at the very end may lack its line break.
        self.buffer.extend_from_slice(b"\n");
        if let Some(part) = self.next_part() {
            return Some(part);
        }
        let state = std::mem::replace(&mut self.state, State::Seek);
        let State::Delimited(headers, _) = state else {
            self.buffer.clear();
            return None;
        };
        let body = self
            .buffer
            .iter()
            .rposition(|b| !b"\r\n".contains(b))
            .map_or(0, |last| last + 1);
        let complete = self.buffer[..body].ends_with(&[0xFF, 0xD9]);
        let body = self.buffer.split_to(body).freeze();
        self.buffer.clear();
        complete.then_some(Part { headers, body })
    }

    /// The next complete part, if the bytes pushed so far hold one.
    pub fn next_part(&mut self) -> Option<Part> {
        loop {
            match std::mem::replace(&mut self.state, State::Seek) {
                State::Seek => {
                    let line = match self.take_line(MAX_JUNK_LINE) {
                        Line::Whole(line) => line,
                        Line::Incomplete => return None,
                        Line::TooLong => continue,
                    };
                    if let Some(close) = self.delimiter(&line) {
                        self.closed |= close;
                        if !close {
                            self.state = State::Headers(HeaderMap::new());
                        }
                    }
                }
                State::Headers(mut headers) => {
                    if self.buffer.starts_with(&[0xFF, 0xD8]) {
                        // No header section: the body starts at once.
                        self.state = State::Delimited(headers, 0);
                        continue;
                    }
                    let line = match self.take_line(MAX_HEADER_BYTES) {
                        Line::Whole(line) => line,
                        Line::Incomplete => {
                            self.state = State::Headers(headers);
                            return None;
                        }
                        // A header line that long is no frame's: drop the part.
                        Line::TooLong => continue,
                    };
                    let line = trim_end(&line);
                    if line.is_empty() {
                        self.state = match content_length(&headers) {
                            Some(length) if length > self.max_part_size => {
                                self.too_large += 1;
                                State::SkipSized(length)
                            }
                            Some(length) => State::Sized(headers, length),
                            None => State::Delimited(headers, 0),
                        };
                    } else if let Some(close) = self.delimiter(line) {
                        // An empty part: no body follows its headers.
                        self.closed |= close;
                        if !close {
                            self.state = State::Headers(HeaderMap::new());
                        }
                    } else if headers.len() < MAX_HEADERS {
                        add_header(&mut headers, line);
                        self.state = State::Headers(headers);
                    }
                    // Else: too many headers for a frame; drop the part and look for the next.
                }
                State::Sized(headers, length) => {
                    if self.buffer.len() < length {
                        self.state = State::Sized(headers, length);
                        return None;
                    }
                    let body = self.buffer.split_to(length).freeze();
                    if !body.is_empty() {
                        return Some(Part { headers, body });
                    }
                }
                State::SkipSized(remaining) => {
                    let skip = remaining.min(self.buffer.len());
                    self.buffer.advance(skip);
                    if skip < remaining {
                        self.state = State::SkipSized(remaining - skip);
                        return None;
                    }
                }
                State::Delimited(headers, scanned) => match self.find_delimiter(scanned, true) {
                    Ok(end) => {
                        let body = trim_line_break(&self.buffer[..end]);
                        let body = self.buffer.split_to(body).freeze();
                        if body.len() > self.max_part_size {
                            self.too_large += 1;
                        } else if !body.is_empty() {
                            return Some(Part { headers, body });
                        }
                    }
                    // (The last byte before a delimiter may be the `\r` of its line break.)
                    Err(scanned) if scanned > self.max_part_size + 1 => {
                        self.too_large += 1;
                        self.buffer.advance(scanned);
                        self.state = State::SkipDelimited;
                    }
                    Err(scanned) => {
                        self.state = State::Delimited(headers, scanned);
                        return None;
                    }
                },
                State::SkipDelimited => match self.find_delimiter(0, false) {
                    Ok(end) => self.buffer.advance(end),
                    Err(scanned) => {
                        self.buffer.advance(scanned);
                        self.state = State::SkipDelimited;
                        return None;
                    }
                },
            }
        }
    }

    /// Takes one line (without its `\n`) from the buffer. A line longer than `limit` is
    /// dropped, whether or not its end is in yet, so how the bytes were split does not matter.
    fn take_line(&mut self, limit: usize) -> Line {
        if self.skip_line {
            match memchr::memchr(b'\n', &self.buffer) {
                Some(end) => {
                    self.buffer.advance(end + 1);
                    self.skip_line = false;
                }
                None => {
                    self.buffer.clear();
                    return Line::Incomplete;
                }
            }
            return Line::TooLong;
        }
        match memchr::memchr(b'\n', &self.buffer) {
            Some(end) if end > limit => {
                self.buffer.advance(end + 1);
                Line::TooLong
            }
            Some(end) => {
                let line = self.buffer.split_to(end + 1).freeze();
                Line::Whole(line.slice(..end))
            }
            None if self.buffer.len() > limit => {
                self.buffer.clear();
                self.skip_line = true;
                Line::TooLong
            }
            None => Line::Incomplete,
        }
    }

    /// `Some(close)` if `line` is a delimiter line: dashes, the boundary, then `--` for the
    /// closing delimiter, then optional white space.
    fn delimiter(&self, line: &[u8]) -> Option<bool> {
        if line.len() > self.longest_delimiter() {
            return None;
        }
        let line = trim_end(line);
        let rest = line.strip_prefix(b"--")?;
        let start = rest.iter().position(|&b| b != b'-')?;
        let rest = rest[start..].strip_prefix(self.core.as_slice())?;
        match rest {
            b"" => Some(false),
            b"--" => Some(true),
            _ => None,
        }
    }

    /// The longest line taken for a delimiter (dashes and white space around the boundary).
    fn longest_delimiter(&self) -> usize {
        self.core.len() + 80
    }

    /// Finds the next delimiter line in the buffer from `from`: `Ok(position of its line
    /// start)`, or `Err(bytes certainly free of one)` if none is in yet. `line_start` says
    /// whether the buffer starts at the start of a line.
    fn find_delimiter(&self, from: usize, line_start: bool) -> Result<usize, usize> {
        // A delimiter may open the buffer (a part with an empty body).
        if from == 0 && line_start && self.buffer.starts_with(b"--") {
            match self.delimiter_at(0) {
                Some(true) => return Ok(0),
                None => return Err(0),
                Some(false) => {}
            }
        }
        let finder = memmem::Finder::new(b"\n--");
        let mut at = from;
        while let Some(found) = finder.find(&self.buffer[at..]) {
            let line = at + found + 1;
            match self.delimiter_at(line) {
                Some(true) => return Ok(line),
                None => return Err(line - 1),
                Some(false) => at = line,
            }
        }
        // The last two bytes could begin `\n--`.
        Err(self.buffer.len().saturating_sub(2).max(from))
    }

    /// Whether the line starting at `start` is a delimiter: `Some(true)` yes, `Some(false)` no,
    /// `None` if its end is not in yet and it could still be one.
    fn delimiter_at(&self, start: usize) -> Option<bool> {
        let rest = &self.buffer[start..];
        match memchr::memchr(b'\n', rest) {
            Some(end) => Some(self.delimiter(&rest[..end]).is_some()),
            // Could still be one if it is no longer than a delimiter line can be.
            None if rest.len() <= self.longest_delimiter() => {
                let dashes = rest.iter().take_while(|&&b| b == b'-').count();
                let after = &rest[dashes..];
                let n = after.len().min(self.core.len());
                if after[..n] == self.core[..n] {
                    None
                } else {
                    Some(false)
                }
            }
            None => Some(false),
        }
    }
}

/// The `boundary` parameter of a multipart `Content-Type`, unquoted.
fn boundary_of(content_type: &str) -> Result<String, BoundaryError> {
    let mut params = content_type.split(';');
    let media_type = params.next().unwrap_or_default().trim();
    if !media_type.to_ascii_lowercase().starts_with("multipart/") {
        return Err(BoundaryError::NotMultipart(content_type.to_owned()));
    }
    params
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .to_owned()
        })
        .ok_or_else(|| BoundaryError::Missing(content_type.to_owned()))
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b" \t\r".contains(b))
        .map_or(0, |last| last + 1);
    &line[..end]
}

/// The length of `body` without one trailing `\r\n` or `\n`.
fn trim_line_break(body: &[u8]) -> usize {
    if body.ends_with(b"\r\n") {
        body.len() - 2
    } else if body.ends_with(b"\n") {
        body.len() - 1
    } else {
        body.len()
    }
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn add_header(headers: &mut HeaderMap, line: &[u8]) {
    let Some(colon) = memchr::memchr(b':', line) else {
        return;
    };
    let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(trim_end(&line[..colon])),
        HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
    ) else {
        return;
    };
    headers.append(name, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(parser: &mut MultipartParser, input: &[u8]) -> Vec<Bytes> {
        parser.push(input);
        let mut parts = Vec::new();
        while let Some(part) = parser.next_part() {
            parts.push(part.body);
        }
        parts.extend(parser.finish().map(|part| part.body));
        parts
    }

    #[test]
    fn boundary_from_content_type() {
        let cases = [
            ("multipart/x-mixed-replace; boundary=frame", "frame"),
            ("multipart/x-mixed-replace;boundary=\"--x\"", "--x"),
            (
                "Multipart/X-Mixed-Replace; charset=x; BOUNDARY = abc ",
                "abc",
            ),
        ];
        for (content_type, boundary) in cases {
            assert_eq!(boundary_of(content_type).unwrap(), boundary);
        }
        assert!(matches!(
            boundary_of("image/jpeg"),
            Err(BoundaryError::NotMultipart(_))
        ));
        assert!(matches!(
            boundary_of("multipart/x-mixed-replace"),
            Err(BoundaryError::Missing(_))
        ));
        assert!(matches!(
            MultipartParser::new("--"),
            Err(BoundaryError::Empty(_))
        ));
    }

    #[test]
    fn delimiter_lines() {
        let parser = MultipartParser::new("--x").unwrap();
        assert_eq!(parser.delimiter(b"--x"), Some(false));
        assert_eq!(parser.delimiter(b"----x\r"), Some(false));
        assert_eq!(parser.delimiter(b"--x-- "), Some(true));
        assert_eq!(parser.delimiter(b"x"), None);
        assert_eq!(parser.delimiter(b"--xy"), None);
        assert_eq!(parser.delimiter(b"--"), None);
    }

    #[test]
    fn body_without_length_ends_at_the_delimiter() {
        let mut parser = MultipartParser::new("b").unwrap();
        let parts = parse_all(
            &mut parser,
            b"preamble\n--b\nContent-Type: image/jpeg\n\none\n--bx\nstill one\n--b\n\ntwo\r\n--b--\n",
        );
        assert_eq!(
            parts,
            vec![Bytes::from("one\n--bx\nstill one"), "two".into()]
        );
        assert!(parser.is_closed());
    }

    #[test]
    fn too_large_parts_are_dropped_and_counted() {
        let mut parser = MultipartParser::new("b").unwrap().max_part_size(10);
        let big = "x".repeat(100);
        let input = format!(
            "--b\r\nContent-Length: 100\r\n\r\n{big}\r\n--b\r\n\r\n{big}\r\n--b\r\n\r\nsmall\r\n--b\r\n"
        );
        assert_eq!(
            parse_all(&mut parser, input.as_bytes()),
            vec![Bytes::from("small")]
        );
        assert_eq!(parser.too_large(), 2);
        assert!(parser.buffered() < 20);
    }

    #[test]
    fn a_part_that_starts_with_a_jpeg_needs_no_headers() {
        let mut parser = MultipartParser::new("b").unwrap();
        let parts = parse_all(&mut parser, b"--b\r\n\xFF\xD8abc\xFF\xD9\r\n--b\r\n");
        assert_eq!(parts, vec![Bytes::from_static(b"\xFF\xD8abc\xFF\xD9")]);
    }

    #[test]
    fn finish_keeps_a_complete_last_jpeg_only() {
        let mut parser = MultipartParser::new("b").unwrap();
        parser.push(b"--b\r\n\r\n\xFF\xD8abc\xFF\xD9");
        assert!(parser.next_part().is_none());
        assert_eq!(&parser.finish().unwrap().body[..], b"\xFF\xD8abc\xFF\xD9");

        let mut parser = MultipartParser::new("b").unwrap();
        parser.push(b"--b\r\n\r\n\xFF\xD8ab");
        assert!(parser.next_part().is_none());
        assert!(parser.finish().is_none());
    }

    mod chunking {
        use super::*;
        use proptest::prelude::*;

        /// A JPEG-shaped body (SOI, payload, EOI) that holds no line starting with `--`.
        fn body() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(any::<u8>(), 0..400)
                .prop_map(|payload| {
                    let mut body = vec![0xFF, 0xD8];
                    body.extend(payload);
                    body.extend([0xFF, 0xD9]);
                    body
                })
                .prop_filter("no delimiter-like line", |body| {
                    memmem::find(body, b"\n--").is_none()
                })
        }

        #[derive(Debug, Clone)]
        struct Style {
            /// (Content-Type, delimiter as sent)
            boundary: (&'static str, &'static str),
            crlf: bool,
            preamble: bool,
            closing: bool,
            header_case: bool,
        }

        fn style() -> impl Strategy<Value = Style> {
            let boundaries = prop_oneof![
                Just(("multipart/x-mixed-replace; boundary=frame", "--frame")),
                Just(("multipart/x-mixed-replace;boundary=\"--x\"", "----x")),
                Just(("multipart/x-mixed-replace; boundary=\"--x\"", "--x")),
                Just((
                    "multipart/x-mixed-replace; boundary=--myboundary",
                    "--myboundary"
                )),
            ];
            (
                boundaries,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(boundary, crlf, preamble, closing, header_case)| Style {
                    boundary,
                    crlf,
                    preamble,
                    closing,
                    header_case,
                })
        }

        fn encode(style: &Style, frames: &[(Vec<u8>, bool)]) -> Vec<u8> {
            let nl: &[u8] = if style.crlf { b"\r\n" } else { b"\n" };
            let delimiter = style.boundary.1.as_bytes();
            let mut out = Vec::new();
            if style.preamble {
                out.extend_from_slice(b"This is a multipart stream; enjoy.");
                out.extend_from_slice(nl);
            }
            for (index, (body, with_length)) in frames.iter().enumerate() {
                out.extend_from_slice(delimiter);
                out.extend_from_slice(nl);
                let name = if style.header_case {
                    "CONTENT-TYPE"
                } else {
                    "content-type"
                };
                out.extend_from_slice(format!("{name}: image/jpeg").as_bytes());
                out.extend_from_slice(nl);
                out.extend_from_slice(format!("X-Frame-Index:{index}").as_bytes());
                out.extend_from_slice(nl);
                if *with_length {
                    out.extend_from_slice(format!("Content-Length: {}", body.len()).as_bytes());
                    out.extend_from_slice(nl);
                }
                out.extend_from_slice(nl);
                out.extend_from_slice(body);
                out.extend_from_slice(nl);
            }
            out.extend_from_slice(delimiter);
            if style.closing {
                out.extend_from_slice(b"--");
            }
            out.extend_from_slice(nl);
            out
        }

        /// Bytes made of the pieces a multipart parser cares about, in any order.
        fn soup() -> impl Strategy<Value = Vec<u8>> {
            let token = prop_oneof![
                Just(b"--frame".to_vec()),
                Just(b"--frame--".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b"-".to_vec()),
                Just(b"Content-Length: 3".to_vec()),
                Just(b"Content-Length: 300".to_vec()),
                Just(b"X-Frame-Index: 1".to_vec()),
                Just(vec![0xFF, 0xD8]),
                Just(vec![0xFF, 0xD9]),
                Just(vec![b' '; 90]),
                proptest::collection::vec(any::<u8>(), 0..20),
            ];
            proptest::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
        }

        /// Feeds `input` to `parser` in pieces cut at `cuts`; every part, `finish` included.
        fn feed(
            parser: &mut MultipartParser,
            input: &[u8],
            cuts: &[proptest::sample::Index],
        ) -> Vec<Part> {
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
            cuts.push(input.len());
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut start = 0;
            for cut in cuts {
                parser.push(&input[start..cut]);
                start = cut;
                while let Some(part) = parser.next_part() {
                    parts.push(part);
                }
            }
            parts.extend(parser.finish());
            parts
        }

        fn parse(input: &[u8], cuts: &[proptest::sample::Index]) -> (Vec<Part>, u64, bool) {
            let mut parser = MultipartParser::new("frame").unwrap().max_part_size(100);
            let parts = feed(&mut parser, input, cuts);
            (parts, parser.too_large(), parser.is_closed())
        }

        proptest! {
            #[test]
            fn any_input_parses_the_same_however_it_is_split(
                input in soup(),
                cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..30),
            ) {
                let whole = parse(&input, &[]);
                let split = parse(&input, &cuts);
                prop_assert_eq!(whole, split);
            }

            #[test]
            fn any_chunking_gives_the_same_frames(
                style in style(),
                frames in proptest::collection::vec((body(), any::<bool>()), 1..6),
                cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..40),
            ) {
                let input = encode(&style, &frames);
                let mut parser = MultipartParser::from_content_type(style.boundary.0).unwrap();
                let parts = feed(&mut parser, &input, &cuts);
                let got: Vec<(Option<&str>, &[u8])> = parts
                    .iter()
                    .map(|part| (part.header("x-frame-index"), &part.body[..]))
                    .collect();
                let indices: Vec<String> = (0..frames.len()).map(|i| i.to_string()).collect();
                let want: Vec<(Option<&str>, &[u8])> = frames
                    .iter()
                    .zip(&indices)
                    .map(|((body, _), index)| (Some(index.as_str()), &body[..]))
                    .collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(parser.is_closed(), style.closing);
                prop_assert!(parts.iter().all(|part| part.header("content-type") == Some("image/jpeg")));
            }
        }
    }
}
