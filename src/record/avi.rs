//! An AVI (RIFF, AVI 1.0) writer for Motion JPEG: each frame is the stream's own JPEG, stored
//! as it is (no decoding, no re-encoding), with the legacy `idx1` index at the end.
//!
//! Written here rather than taken from a crate: no maintained Rust crate writes AVI, and the
//! format needed is small (a header, one chunk per frame, an index). ffmpeg, OpenCV and
//! ImageJ/Fiji read the result directly.
//!
//! A recording cut short (a full disk, a crash) stays playable: the header's sizes and frame
//! count are brought up to date every [`PATCH_EVERY`] frames, so the file is always a valid AVI
//! of the frames up to the last update (without `idx1`, which readers do without by scanning).

use std::io::{self, Seek, SeekFrom, Write};

/// Frames between two updates of the header's sizes.
pub(crate) const PATCH_EVERY: u32 = 15;
/// The largest file written: AVI 1.0 sizes are 32-bit, and many readers take them as signed.
pub(crate) const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024 - 16 * 1024 * 1024;

const AVIF_HASINDEX: u32 = 0x10;
const AVIIF_KEYFRAME: u32 = 0x10;

// Offsets of the fields updated as frames are written.
const RIFF_SIZE_AT: u64 = 4;
const AVIH_MICROSECONDS_AT: u64 = 32;
const AVIH_FLAGS_AT: u64 = 44;
const AVIH_TOTAL_FRAMES_AT: u64 = 48;
const AVIH_BUFFER_AT: u64 = 60;
const STRH_SCALE_AT: u64 = 128;
const STRH_RATE_AT: u64 = 132;
const STRH_LENGTH_AT: u64 = 140;
const STRH_BUFFER_AT: u64 = 144;
const MOVI_SIZE_AT: u64 = 216;
/// Where the first frame chunk starts (after `LIST size 'movi'`).
const MOVI_DATA_AT: u64 = 224;

/// Writes frames of one size into an AVI file.
pub(crate) struct AviWriter<W: Write + Seek> {
    out: W,
    /// Index entries: offset from the `movi` fourcc, and size.
    index: Vec<(u32, u32)>,
    /// Bytes written so far (the end of the file).
    end: u64,
    largest_frame: u32,
    /// Frames per second the header states, updated as frames come.
    rate_millihertz: u32,
}

impl<W: Write + Seek> AviWriter<W> {
    /// Writes the header for frames of `width` x `height` at a first guess of `fps`.
    pub(crate) fn new(mut out: W, width: u16, height: u16, fps: f64) -> io::Result<Self> {
        let rate = millihertz(fps);
        let (w, h) = (u32::from(width), u32::from(height));
        let mut header = Vec::with_capacity(MOVI_DATA_AT as usize);
        let put = |header: &mut Vec<u8>, bytes: &[u8]| header.extend_from_slice(bytes);
        let u32le = |value: u32| value.to_le_bytes();
        put(&mut header, b"RIFF");
        put(&mut header, &u32le(0)); // patched
        put(&mut header, b"AVI ");
        put(&mut header, b"LIST");
        put(&mut header, &u32le(192)); // hdrl: 'hdrl' + avih (8 + 56) + strl LIST (8 + 116)
        put(&mut header, b"hdrl");
        put(&mut header, b"avih");
        put(&mut header, &u32le(56));
        put(&mut header, &u32le(micros_per_frame(rate))); // dwMicroSecPerFrame
        put(&mut header, &u32le(0)); // dwMaxBytesPerSec
        put(&mut header, &u32le(0)); // dwPaddingGranularity
        put(&mut header, &u32le(0)); // dwFlags, AVIF_HASINDEX once the index is written
        put(&mut header, &u32le(0)); // dwTotalFrames (patched)
        put(&mut header, &u32le(0)); // dwInitialFrames
        put(&mut header, &u32le(1)); // dwStreams
        put(&mut header, &u32le(0)); // dwSuggestedBufferSize (patched)
        put(&mut header, &u32le(w));
        put(&mut header, &u32le(h));
        put(&mut header, &[0; 16]); // dwReserved
        put(&mut header, b"LIST");
        put(&mut header, &u32le(116)); // 'strl' + strh (8 + 56) + strf (8 + 40)
        put(&mut header, b"strl");
        put(&mut header, b"strh");
        put(&mut header, &u32le(56));
        put(&mut header, b"vids");
        put(&mut header, b"MJPG");
        put(&mut header, &u32le(0)); // dwFlags
        put(&mut header, &[0; 4]); // wPriority, wLanguage
        put(&mut header, &u32le(0)); // dwInitialFrames
        put(&mut header, &u32le(1000)); // dwScale
        put(&mut header, &u32le(rate)); // dwRate (frames per 1000 s)
        put(&mut header, &u32le(0)); // dwStart
        put(&mut header, &u32le(0)); // dwLength (patched)
        put(&mut header, &u32le(0)); // dwSuggestedBufferSize (patched)
        put(&mut header, &u32le(u32::MAX)); // dwQuality: default
        put(&mut header, &u32le(0)); // dwSampleSize: frames vary
        put(&mut header, &[0, 0, 0, 0]); // rcFrame left, top
        put(&mut header, &width.to_le_bytes());
        put(&mut header, &height.to_le_bytes());
        put(&mut header, b"strf");
        put(&mut header, &u32le(40));
        put(&mut header, &u32le(40)); // biSize
        put(&mut header, &u32le(w)); // biWidth
        put(&mut header, &u32le(h)); // biHeight
        put(&mut header, &1u16.to_le_bytes()); // biPlanes
        put(&mut header, &24u16.to_le_bytes()); // biBitCount
        put(&mut header, b"MJPG"); // biCompression
        put(&mut header, &u32le(w * h * 3)); // biSizeImage
        put(&mut header, &[0; 16]); // resolution, colours
        put(&mut header, b"LIST");
        put(&mut header, &u32le(4)); // movi size (patched)
        put(&mut header, b"movi");
        debug_assert_eq!(header.len() as u64, MOVI_DATA_AT);
        out.write_all(&header)?;
        Ok(Self {
            out,
            index: Vec::new(),
            end: MOVI_DATA_AT,
            largest_frame: 0,
            rate_millihertz: rate,
        })
    }

    /// Frames written.
    pub(crate) fn frames(&self) -> u32 {
        u32::try_from(self.index.len()).unwrap_or(u32::MAX)
    }

    /// Whether `frame` still fits under [`MAX_FILE_BYTES`] (with its index entry).
    pub(crate) fn fits(&self, frame: usize) -> bool {
        self.end + 8 + frame as u64 + 1 + 16 * (self.index.len() as u64 + 1) + 8 <= MAX_FILE_BYTES
    }

    /// Sets the frame rate the header states.
    pub(crate) fn set_rate(&mut self, fps: f64) {
        self.rate_millihertz = millihertz(fps);
    }

    /// Appends one JPEG frame.
    pub(crate) fn write_frame(&mut self, jpeg: &[u8]) -> io::Result<()> {
        let size = u32::try_from(jpeg.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame over 4 GiB"))?;
        let offset = u32::try_from(self.end - (MOVI_DATA_AT - 4))
            .map_err(|_| io::Error::other("the AVI file is full"))?;
        self.out.write_all(b"00dc")?;
        self.out.write_all(&size.to_le_bytes())?;
        self.out.write_all(jpeg)?;
        let padded = u64::from(size) + u64::from(size % 2);
        if size % 2 == 1 {
            self.out.write_all(&[0])?;
        }
        self.end += 8 + padded;
        self.index.push((offset, size));
        self.largest_frame = self.largest_frame.max(size);
        if self.frames().is_multiple_of(PATCH_EVERY) {
            self.patch()?;
        }
        Ok(())
    }

    /// Brings the header's sizes, frame count and rate up to date (the file is then a valid
    /// AVI of every frame written so far), and returns to the end.
    fn patch(&mut self) -> io::Result<()> {
        let frames = self.frames();
        let fields = [
            (
                RIFF_SIZE_AT,
                u32::try_from(self.end - 8).unwrap_or(u32::MAX),
            ),
            (AVIH_MICROSECONDS_AT, micros_per_frame(self.rate_millihertz)),
            (AVIH_TOTAL_FRAMES_AT, frames),
            (AVIH_BUFFER_AT, self.largest_frame + 8),
            (STRH_SCALE_AT, 1000),
            (STRH_RATE_AT, self.rate_millihertz),
            (STRH_LENGTH_AT, frames),
            (STRH_BUFFER_AT, self.largest_frame + 8),
            (
                MOVI_SIZE_AT,
                u32::try_from(self.end - (MOVI_DATA_AT - 4)).unwrap_or(u32::MAX),
            ),
        ];
        for (at, value) in fields {
            self.out.seek(SeekFrom::Start(at))?;
            self.out.write_all(&value.to_le_bytes())?;
        }
        self.out.seek(SeekFrom::Start(self.end))?;
        Ok(())
    }

    /// Writes the index and the final header, and returns the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.patch()?;
        let mut index = Vec::with_capacity(8 + 16 * self.index.len());
        index.extend_from_slice(b"idx1");
        index.extend_from_slice(
            &u32::try_from(16 * self.index.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for (offset, size) in &self.index {
            index.extend_from_slice(b"00dc");
            index.extend_from_slice(&AVIIF_KEYFRAME.to_le_bytes());
            index.extend_from_slice(&offset.to_le_bytes());
            index.extend_from_slice(&size.to_le_bytes());
        }
        self.out.write_all(&index)?;
        self.end += index.len() as u64;
        // The RIFF chunk now holds the index too; the movi list does not.
        self.out.seek(SeekFrom::Start(RIFF_SIZE_AT))?;
        self.out.write_all(
            &u32::try_from(self.end - 8)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        )?;
        self.out.seek(SeekFrom::Start(AVIH_FLAGS_AT))?;
        self.out.write_all(&AVIF_HASINDEX.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(self.end))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn millihertz(fps: f64) -> u32 {
    if fps.is_finite() && fps > 0.0 {
        (fps * 1000.0).round().clamp(1.0, f64::from(u32::MAX)) as u32
    } else {
        30_000
    }
}

fn micros_per_frame(millihertz: u32) -> u32 {
    (1_000_000_000 / u64::from(millihertz.max(1))) as u32
}

/// The width and height in a JPEG's frame header (SOF0-SOF15 but DHT, JPG and DAC).
pub(crate) fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return Some((width, height));
        }
        at += 2 + length;
    }
    None
}

/// Reads the frames of an AVI this module wrote (or a prefix of one): for tests and checks.
#[cfg(test)]
pub(crate) fn read_frames(avi: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut at = MOVI_DATA_AT as usize;
    while at + 8 <= avi.len() && &avi[at..at + 4] == b"00dc" {
        let size = u32::from_le_bytes(avi[at + 4..at + 8].try_into().unwrap()) as usize;
        if at + 8 + size > avi.len() {
            break;
        }
        frames.push(&avi[at + 8..at + 8 + size]);
        at += 8 + size + size % 2;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn jpeg(tag: u8, len: usize) -> Vec<u8> {
        // SOI, SOF0 (8 x 6), filler, EOI.
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 6, 0, 8, 1, 1, 0x11, 0];
        bytes.extend(std::iter::repeat_n(tag, len));
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    #[test]
    fn frames_are_stored_as_they_are_with_a_header_and_an_index() {
        assert_eq!(jpeg_size(&jpeg(1, 10)), Some((8, 6)));
        let mut writer = AviWriter::new(Cursor::new(Vec::new()), 8, 6, 10.0).unwrap();
        let frames: Vec<Vec<u8>> = (0..20).map(|n| jpeg(n, 100 + usize::from(n))).collect();
        for frame in &frames {
            writer.write_frame(frame).unwrap();
        }
        writer.set_rate(12.5);
        let avi = writer.finish().unwrap().into_inner();
        assert_eq!(&avi[..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(avi[4..8].try_into().unwrap()) as usize,
            avi.len() - 8
        );
        assert_eq!(&avi[8..12], b"AVI ");
        assert_eq!(
            u32::from_le_bytes(avi[48..52].try_into().unwrap()),
            20,
            "total frames"
        );
        assert_eq!(
            u32::from_le_bytes(avi[132..136].try_into().unwrap()),
            12_500,
            "rate"
        );
        let read: Vec<&[u8]> = read_frames(&avi);
        assert_eq!(read.len(), 20);
        for (read, written) in read.iter().zip(&frames) {
            assert_eq!(*read, written.as_slice(), "byte for byte");
        }
        let idx1 = avi.windows(4).rposition(|w| w == b"idx1").unwrap();
        assert_eq!(
            u32::from_le_bytes(avi[idx1 + 4..idx1 + 8].try_into().unwrap()),
            20 * 16
        );
    }

    /// Fails every write once `limit` bytes have been written in all.
    struct Full {
        inner: Cursor<Vec<u8>>,
        limit: u64,
    }

    impl Write for Full {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let room = self.limit.saturating_sub(self.inner.get_ref().len() as u64) as usize;
            if room == 0 && self.inner.position() as usize >= self.inner.get_ref().len() {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            let position = self.inner.position() as usize;
            let growing = (position + data.len()).saturating_sub(self.inner.get_ref().len());
            if growing > room {
                let fits = data.len() - (growing - room);
                self.inner.write_all(&data[..fits])?;
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            self.inner.write(data)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Full {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn a_full_disk_leaves_a_valid_file_of_the_frames_before_the_last_update() {
        let full = Full {
            inner: Cursor::new(Vec::new()),
            limit: 5_000,
        };
        let mut writer = AviWriter::new(full, 8, 6, 10.0).unwrap();
        let mut written = 0;
        let error = loop {
            match writer.write_frame(&jpeg(7, 120)) {
                Ok(()) => written += 1,
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert!(written > PATCH_EVERY as usize);
        let avi = writer.out.inner.into_inner();
        let stated = u32::from_le_bytes(avi[48..52].try_into().unwrap()) as usize;
        assert!(
            stated >= PATCH_EVERY as usize && stated <= written,
            "{stated} of {written}"
        );
        let riff = u32::from_le_bytes(avi[4..8].try_into().unwrap()) as usize;
        assert!(
            riff + 8 <= avi.len(),
            "the header claims no more than the file holds"
        );
        assert!(read_frames(&avi).len() >= stated);
    }
}
