//! Fuzzes `MultipartParser`: arbitrary bytes, split at arbitrary places, never panic, never
//! buffer much beyond the maximum part size, and give the same parts however they are split.
#![no_main]

use labthings::client::MultipartParser;
use libfuzzer_sys::fuzz_target;

const MAX_PART: usize = 4096;

fn parse(data: &[u8], chunk: usize) -> Vec<(Vec<u8>, Option<String>)> {
    let mut parser = MultipartParser::new("frame").unwrap().max_part_size(MAX_PART);
    let mut parts = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        parser.push(piece);
        while let Some(part) = parser.next_part() {
            assert!(part.body.len() <= MAX_PART);
            parts.push((part.body.to_vec(), part.header("x-frame-index").map(str::to_owned)));
        }
        // Bounded by the part size plus a header section and a line of junk.
        assert!(parser.buffered() <= MAX_PART + piece.len() + 128 * 1024);
    }
    parts.extend(
        parser
            .finish()
            .map(|part| (part.body.to_vec(), part.header("x-frame-index").map(str::to_owned))),
    );
    parts
}

fuzz_target!(|input: (u8, &[u8])| {
    let (split, data) = input;
    let whole = parse(data, data.len());
    let split = parse(data, usize::from(split));
    assert_eq!(whole, split);
});
