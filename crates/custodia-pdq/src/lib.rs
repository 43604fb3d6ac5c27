//! PDQ, Meta's perceptual image hash (c.f. "The TMK+PDQF video-hashing algorithm and the
//! PDQ image similarity algorithm", Meta, 2017), written from its description and its
//! reference implementation's published behaviour: luminance, two-pass Jarosz (tent)
//! blur, decimation to 64×64, a 16×16 partial DCT, and one bit per coefficient above the
//! median. A quality score (0–100) counts significant gradients; hashes of quality below
//! 50 are not to be trusted. Pure: no I/O, no image decoding.
//!
//! [`PdqIndex`] finds a hash's matches within 31 bits in a large list without a scan.

mod index;

use std::fmt;
use std::sync::OnceLock;

pub use index::{MAX_INDEXED_DISTANCE, PdqIndex};

/// A 256-bit PDQ hash. Bit `k` is coefficient `(k / 16, k % 16)` of the 16×16 DCT.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PdqHash([u16; 16]);

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

impl fmt::Display for PdqHash {
    /// 64 hex digits, as the reference implementation and hash lists write them (the
    /// highest 16-bit word first).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in self.0.iter().rev() {
            write!(f, "{w:04x}")?;
        }
        Ok(())
    }
}

impl PdqHash {
    /// Parses 64 hex digits (the reference's format).
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut words = [0u16; 16];
        for (i, w) in words.iter_mut().rev().enumerate() {
            *w = u16::from_str_radix(s.get(4 * i..4 * i + 4)?, 16).ok()?;
        }
        Some(Self(words))
    }

    /// The hash as 32 bytes (the words little-end first), for storage.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, w) in self.0.iter().enumerate() {
            out[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// From [`Self::to_bytes`].
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut words = [0u16; 16];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        }
        Self(words)
    }

    /// The number of differing bits.
    pub fn distance(&self, other: &Self) -> u32 {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// Bit `k` (0..256).
    pub fn bit(&self, k: usize) -> bool {
        self.0[k / 16] >> (k % 16) & 1 == 1
    }
}

/// The smallest side PDQ hashes; smaller images get the zero hash with quality 0.
pub const MIN_DIM: usize = 5;

/// The PDQ hash and quality (0–100) of an RGB image, `rgb` holding `width × height`
/// pixels of three bytes each, row by row.
///
/// # Panics
/// If `rgb` is shorter than `width * height * 3` bytes (a caller's bug, not input).
pub fn hash_rgb(width: usize, height: usize, rgb: &[u8]) -> (PdqHash, u8) {
    assert!(
        rgb.len() >= width * height * 3,
        "rgb holds width*height pixels"
    );
    hash_luma(width, height, &mut luma(&rgb[..width * height * 3], 3))
}

/// The luminance of pixels of `channels` bytes each (1 grey, 2 grey and alpha, 3 RGB,
/// 4 RGBA; alpha is ignored, as converting to RGB does), as PDQ weighs it.
///
/// # Panics
/// If `channels` is not 1 to 4 (a caller's bug).
pub fn luma(pixels: &[u8], channels: usize) -> Vec<f32> {
    assert!((1..=4).contains(&channels), "1 to 4 channels");
    pixels
        .chunks_exact(channels)
        .map(|p| {
            let (r, g, b) = if channels < 3 {
                (p[0], p[0], p[0])
            } else {
                (p[0], p[1], p[2])
            };
            0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
        })
        .collect()
}

/// The PDQ hash and quality of an image given as its luminance ([`luma`]), `width ×
/// height` values row by row, at full resolution as the reference hashes it. Blurs in
/// place: beyond `luma` it needs one line of memory.
///
/// # Panics
/// If `luma` is shorter than `width * height` (a caller's bug, not input).
pub fn hash_luma(width: usize, height: usize, luma: &mut [f32]) -> (PdqHash, u8) {
    assert!(
        luma.len() >= width * height,
        "luma holds width*height values"
    );
    if width < MIN_DIM || height < MIN_DIM {
        return (PdqHash([0; 16]), 0);
    }
    let window_rows = jarosz_window(width, 64);
    let window_cols = jarosz_window(height, 64);
    let mut line = vec![0f32; width.max(height)];
    for _ in 0..2 {
        for row in 0..height {
            line[..width].copy_from_slice(&luma[row * width..(row + 1) * width]);
            box_1d(&line, luma, row * width, 1, width, window_rows);
        }
        for col in 0..width {
            for (i, v) in line[..height].iter_mut().enumerate() {
                *v = luma[i * width + col];
            }
            box_1d(&line, luma, col, width, height, window_cols);
        }
    }
    let mut small = [[0f32; 64]; 64];
    for (i, row) in small.iter_mut().enumerate() {
        let src_i = (((i as f64 + 0.5) * height as f64) / 64.0) as usize;
        for (j, v) in row.iter_mut().enumerate() {
            let src_j = (((j as f64 + 0.5) * width as f64) / 64.0) as usize;
            *v = luma[src_i * width + src_j];
        }
    }
    let quality = quality(&small);
    let dct = dct_64_to_16(&small);
    let mut sorted: Vec<f32> = dct.iter().flatten().copied().collect();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[127]; // the lower median, as the reference's Torben selection
    let mut words = [0u16; 16];
    for (i, row) in dct.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            if *v > median {
                let k = i * 16 + j;
                words[k / 16] |= 1 << (k % 16);
            }
        }
    }
    (PdqHash(words), quality)
}

/// Half the 1/64 block per pass, rounded up: two passes then cover the whole block.
fn jarosz_window(old: usize, new: usize) -> usize {
    old.div_ceil(2 * new)
}

/// A box filter of `window` over the `len` values of `input` (one line), written to
/// `output` from `start`, `stride` apart, shrinking the window at both ends as the
/// reference does.
fn box_1d(
    input: &[f32],
    output: &mut [f32],
    start: usize,
    stride: usize,
    len: usize,
    window: usize,
) {
    let half = (window + 2) / 2;
    let phase1 = half - 1;
    let phase2 = window - half + 1;
    let phase3 = len.saturating_sub(window);
    let phase4 = half - 1;
    let (mut li, mut ri, mut oi) = (0, 0, start);
    let mut sum = 0f32;
    let mut current = 0f32;
    for _ in 0..phase1 {
        sum += input[ri];
        current += 1.0;
        ri += 1;
    }
    for _ in 0..phase2 {
        sum += input[ri];
        current += 1.0;
        output[oi] = sum / current;
        ri += 1;
        oi += stride;
    }
    for _ in 0..phase3 {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / current;
        li += 1;
        ri += 1;
        oi += stride;
    }
    for _ in 0..phase4 {
        sum -= input[li];
        current -= 1.0;
        output[oi] = sum / current;
        li += 1;
        oi += stride;
    }
}

/// Significant gradients of the 64×64 buffer, scaled to 0–100.
fn quality(b: &[[f32; 64]; 64]) -> u8 {
    let step = |u: f32, v: f32| (((u - v) * 100.0 / 255.0) as i64).abs();
    let mut sum: i64 = 0;
    for (up, down) in b.iter().zip(b.iter().skip(1)) {
        sum += up.iter().zip(down).map(|(u, v)| step(*u, *v)).sum::<i64>();
    }
    for row in b {
        sum += row.windows(2).map(|w| step(w[0], w[1])).sum::<i64>();
    }
    (sum / 90).min(100) as u8
}

/// The 16×64 DCT matrix (rows 1..=16 of the 64-point DCT-II).
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static M: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    M.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut m = [[0f32; 64]; 16];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (i as f64 + 1.0) * (2.0 * j as f64 + 1.0);
                *v = scale * angle.cos() as f32;
            }
        }
        m
    })
}

/// B = D A Dᵀ, only the 16×16 coefficients PDQ keeps.
fn dct_64_to_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for i in 0..16 {
        for j in 0..64 {
            let mut s = 0f32;
            for k in 0..64 {
                s += d[i][k] * a[k][j];
            }
            t[i][j] = s;
        }
    }
    let mut b = [[0f32; 16]; 16];
    for i in 0..16 {
        for j in 0..16 {
            let mut s = 0f32;
            for k in 0..64 {
                s += t[i][k] * d[j][k];
            }
            b[i][j] = s;
        }
    }
    b
}
