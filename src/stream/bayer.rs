//! Sensor layouts the encoders cannot take as they are: Bayer mosaics (demosaiced to RGB) and
//! bit-packed 10- and 12-bit grey (unpacked to 16-bit values). Scientific cameras deliver
//! both; every producer of [`RawFrame`](super::RawFrame)s can use them.

/// Which colour the top-left 2x2 cell of a Bayer mosaic starts with, row by row: `Rggb` is
/// red, green on the first row and green, blue on the second (GenICam's `BayerRG8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BayerPattern {
    /// `R G` / `G B` (GenICam `BayerRG`).
    Rggb,
    /// `B G` / `G R` (GenICam `BayerBG`).
    Bggr,
    /// `G R` / `B G` (GenICam `BayerGR`).
    Grbg,
    /// `G B` / `R G` (GenICam `BayerGB`).
    Gbrg,
}

impl BayerPattern {
    /// Where red sits in each 2x2 cell: (column, row), each 0 or 1. Blue is opposite.
    fn red(self) -> (usize, usize) {
        match self {
            Self::Rggb => (0, 0),
            Self::Bggr => (1, 1),
            Self::Grbg => (1, 0),
            Self::Gbrg => (0, 1),
        }
    }
}

/// Mirrors an index past either edge back inside (`-1` is `1`), which keeps a mosaic's
/// colour parity; a single row or column stays at 0.
fn mirror(index: isize, len: usize) -> usize {
    let len = len as isize;
    if len == 1 {
        return 0;
    }
    let index = if index < 0 { -index } else { index };
    (if index >= len {
        2 * len - 2 - index
    } else {
        index
    })
    .clamp(0, len - 1) as usize
}

/// Bilinear demosaicing: each pixel keeps its own colour and takes the other two as the mean
/// of its nearest neighbours of that colour. 8-bit RGB out, the same size.
pub(super) fn demosaic_bilinear(
    pattern: BayerPattern,
    width: usize,
    height: usize,
    data: &[u8],
) -> Vec<u8> {
    let (rx, ry) = pattern.red();
    let mut out = vec![0u8; width * height * 3];
    let at = |x: isize, y: isize| -> u16 {
        u16::from(data[mirror(y, height) * width + mirror(x, width)])
    };
    for y in 0..height {
        let yi = y as isize;
        let row = &mut out[y * width * 3..(y + 1) * width * 3];
        for (x, pixel) in row.chunks_exact_mut(3).enumerate() {
            let xi = x as isize;
            let own = at(xi, yi);
            let cross =
                || (at(xi - 1, yi) + at(xi + 1, yi) + at(xi, yi - 1) + at(xi, yi + 1) + 2) / 4;
            let diagonal = || {
                (at(xi - 1, yi - 1)
                    + at(xi + 1, yi - 1)
                    + at(xi - 1, yi + 1)
                    + at(xi + 1, yi + 1)
                    + 2)
                    / 4
            };
            let across = || (at(xi - 1, yi) + at(xi + 1, yi)).div_ceil(2);
            let vertical = || (at(xi, yi - 1) + at(xi, yi + 1)).div_ceil(2);
            let (red_row, red_column) = (y % 2 == ry, x % 2 == rx);
            let (r, g, b) = match (red_row, red_column) {
                // A red site: green around it, blue on the diagonals.
                (true, true) => (own, cross(), diagonal()),
                // A blue site.
                (false, false) => (diagonal(), cross(), own),
                // Green on a red row: red beside it, blue above and below.
                (true, false) => (across(), own, vertical()),
                // Green on a blue row.
                (false, true) => (vertical(), own, across()),
            };
            pixel.copy_from_slice(&[r as u8, g as u8, b as u8]);
        }
    }
    out
}

/// The fast path: each 2x2 cell becomes one RGB pixel (red, the mean of the two greens,
/// blue), half the width and height; an odd last row or column is dropped.
pub(super) fn demosaic_half(
    pattern: BayerPattern,
    width: usize,
    height: usize,
    data: &[u8],
) -> (usize, usize, Vec<u8>) {
    let (rx, ry) = pattern.red();
    let (out_w, out_h) = ((width / 2).max(1), (height / 2).max(1));
    let mut out = Vec::with_capacity(out_w * out_h * 3);
    let at = |x: usize, y: usize| u16::from(data[y.min(height - 1) * width + x.min(width - 1)]);
    for cy in 0..out_h {
        let y0 = cy * 2;
        for cx in 0..out_w {
            let x0 = cx * 2;
            let red = at(x0 + rx, y0 + ry);
            let blue = at(x0 + 1 - rx, y0 + 1 - ry);
            // The greens are the other diagonal.
            let green = (at(x0 + 1 - rx, y0 + ry) + at(x0 + rx, y0 + 1 - ry)).div_ceil(2);
            out.extend_from_slice(&[red as u8, green as u8, blue as u8]);
        }
    }
    (out_w, out_h, out)
}

/// How a camera packs grey values of fewer than 16 bits into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonoPacking {
    /// GenICam PFNC `Mono10p`: 10-bit values as one continuous bit stream, least significant
    /// bit first (4 pixels in 5 bytes).
    Mono10p,
    /// GenICam PFNC `Mono12p`: 12-bit values as one continuous bit stream, least significant
    /// bit first (2 pixels in 3 bytes).
    Mono12p,
    /// GigE Vision's `Mono10Packed`: 2 pixels in 3 bytes, the high 8 bits of each in bytes 0
    /// and 2 and the low 2 bits of both in byte 1 (bits 0-1 and 4-5).
    Mono10Packed,
    /// GigE Vision's `Mono12Packed`: 2 pixels in 3 bytes, the high 8 bits of each in bytes 0
    /// and 2 and the low 4 bits of both in byte 1.
    Mono12Packed,
}

impl MonoPacking {
    /// Bits in each value: 10 or 12.
    pub fn bits(self) -> u32 {
        match self {
            Self::Mono10p | Self::Mono10Packed => 10,
            Self::Mono12p | Self::Mono12Packed => 12,
        }
    }

    /// Bytes that `pixels` values take.
    pub fn packed_len(self, pixels: usize) -> usize {
        match self {
            Self::Mono10p | Self::Mono12p => (pixels * self.bits() as usize).div_ceil(8),
            Self::Mono10Packed | Self::Mono12Packed => pixels.div_ceil(2) * 3,
        }
    }

    /// The `pixels` values packed in `data`, or `None` if `data` is shorter than
    /// [`packed_len`](Self::packed_len).
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::stream::MonoPacking;
    ///
    /// // 0xABC and 0x123 as Mono12p: the bit stream 0xABC, 0x123, least significant first.
    /// assert_eq!(MonoPacking::Mono12p.unpack(2, &[0xBC, 0x3A, 0x12]), Some(vec![0xABC, 0x123]));
    /// // The same two values as GigE Vision's Mono12Packed.
    /// assert_eq!(MonoPacking::Mono12Packed.unpack(2, &[0xAB, 0x3C, 0x12]), Some(vec![0xABC, 0x123]));
    /// ```
    pub fn unpack(self, pixels: usize, data: &[u8]) -> Option<Vec<u16>> {
        if data.len() < self.packed_len(pixels) {
            return None;
        }
        let mut out = Vec::with_capacity(pixels);
        match self {
            Self::Mono12p => {
                for group in data.chunks(3) {
                    let b = |i: usize| u16::from(group.get(i).copied().unwrap_or(0));
                    out.push(b(0) | ((b(1) & 0x0F) << 8));
                    out.push((b(1) >> 4) | (b(2) << 4));
                }
            }
            Self::Mono10p => {
                for group in data.chunks(5) {
                    let bits = group
                        .iter()
                        .enumerate()
                        .fold(0u64, |acc, (i, &byte)| acc | (u64::from(byte) << (8 * i)));
                    for i in 0..4 {
                        out.push(((bits >> (10 * i)) & 0x3FF) as u16);
                    }
                }
            }
            Self::Mono12Packed | Self::Mono10Packed => {
                let low = self.bits() - 8;
                let mask = (1u16 << low) - 1;
                for group in data.chunks(3) {
                    let b = |i: usize| u16::from(group.get(i).copied().unwrap_or(0));
                    out.push((b(0) << low) | (b(1) & mask));
                    out.push((b(2) << low) | ((b(1) >> 4) & mask));
                }
            }
        }
        out.truncate(pixels);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth scene, mosaiced by `pattern`.
    fn mosaic(
        pattern: BayerPattern,
        width: usize,
        height: usize,
        scene: impl Fn(usize, usize) -> [u8; 3],
    ) -> Vec<u8> {
        let (rx, ry) = pattern.red();
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let [r, g, b] = scene(x, y);
                data.push(match (x % 2 == rx, y % 2 == ry) {
                    (true, true) => r,
                    (false, false) => b,
                    _ => g,
                });
            }
        }
        data
    }

    #[test]
    fn a_flat_colour_comes_back_exactly_for_every_pattern() {
        for pattern in [
            BayerPattern::Rggb,
            BayerPattern::Bggr,
            BayerPattern::Grbg,
            BayerPattern::Gbrg,
        ] {
            let data = mosaic(pattern, 7, 5, |_, _| [200, 120, 40]);
            let rgb = demosaic_bilinear(pattern, 7, 5, &data);
            assert!(rgb.chunks(3).all(|p| p == [200, 120, 40]), "{pattern:?}");
            let (w, h, half) = demosaic_half(pattern, 7, 5, &data);
            assert_eq!((w, h), (3, 2));
            assert!(
                half.chunks(3).all(|p| p == [200, 120, 40]),
                "{pattern:?} half"
            );
        }
    }

    #[test]
    fn a_linear_ramp_is_interpolated_exactly_inside() {
        // Each channel a different linear ramp: bilinear interpolation is exact for them.
        let scene = |x: usize, y: usize| {
            [
                (x * 10 + y * 4) as u8,
                (100 + x * 2 + y * 6) as u8,
                (200 - x * 6 - y * 2) as u8,
            ]
        };
        for pattern in [
            BayerPattern::Rggb,
            BayerPattern::Bggr,
            BayerPattern::Grbg,
            BayerPattern::Gbrg,
        ] {
            let (w, h) = (12, 10);
            let rgb = demosaic_bilinear(pattern, w, h, &mosaic(pattern, w, h, scene));
            for y in 1..h - 1 {
                for x in 1..w - 1 {
                    let got = &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
                    assert_eq!(got, scene(x, y), "{pattern:?} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn a_downscaled_mosaic_has_the_size_of_any_other_downscaled_frame() {
        use crate::stream::{PixelFormat, RawFrame};
        let data = mosaic(BayerPattern::Rggb, 24, 12, |_, _| [200, 120, 40]);
        let frame = RawFrame::new(PixelFormat::Bayer8(BayerPattern::Rggb), 24, 12, data).unwrap();
        // Even factors take the 2x2 fast path, odd ones demosaic first; both average blocks.
        for factor in [1u16, 2, 3, 4] {
            let (w, h, rgb) = frame.to_rgb(factor);
            assert_eq!((w, h), (24 / factor, 12 / factor), "factor {factor}");
            assert!(
                rgb.chunks(3).all(|p| p == [200, 120, 40]),
                "factor {factor}"
            );
        }
    }

    #[test]
    fn packed_formats_unpack_to_their_values() {
        let values: Vec<u16> = (0..9).map(|i| (i * 113 + 7) % 1024).collect();
        // Mono10p: pack as an LSB-first bit stream, then unpack.
        let mut bits = 0u128;
        for (i, v) in values.iter().enumerate() {
            bits |= u128::from(*v) << (10 * i);
        }
        let packed: Vec<u8> = (0..MonoPacking::Mono10p.packed_len(9))
            .map(|i| (bits >> (8 * i)) as u8)
            .collect();
        assert_eq!(MonoPacking::Mono10p.unpack(9, &packed).unwrap(), values);
        assert_eq!(
            MonoPacking::Mono10p.unpack(9, &packed[..packed.len() - 1]),
            None
        );
        // Mono10Packed: high bytes outside, low bits in the middle byte.
        let (a, b) = (0b11_0110_1001u16, 0b01_1100_0110u16);
        let packed = [
            (a >> 2) as u8,
            ((a & 3) | ((b & 3) << 4)) as u8,
            (b >> 2) as u8,
        ];
        assert_eq!(
            MonoPacking::Mono10Packed.unpack(2, &packed).unwrap(),
            [a, b]
        );
        // An odd count drops the last half of a group.
        assert_eq!(
            MonoPacking::Mono12Packed
                .unpack(1, &[0xAB, 0x3C, 0x12])
                .unwrap(),
            [0xABC]
        );
    }
}
