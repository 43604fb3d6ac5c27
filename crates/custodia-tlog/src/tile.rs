//! C2SP tiles (c2sp.org/tlog-tiles): tile coordinates, their URL paths, and subtree hashes
//! computed from tile-level hashes.
//!
//! A log only needs to keep the hashes at heights 0, 8, 16, … ("tile levels"): hash `i` of
//! tile `(l, n)` is the complete subtree of height `8l` at index `256n + i`, and every other
//! complete subtree is computed from at most 128 stored hashes of the tile level below it.

use crate::{Hash, node_hash};

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels spanned by one tile level.
pub const TILE_HEIGHT: u8 = 8;

/// A tile (or entry bundle) as named in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Tile level (0 for leaf hashes); `None` for an entry bundle.
    pub level: Option<u8>,
    /// Index within the level.
    pub index: u64,
    /// Number of hashes (or entries): 256 for a full tile, 1–255 for a partial one.
    pub width: u16,
}

impl Tile {
    /// Parses the part of a URL path after `tile/`: `<L>/<N>[.p/<W>]` or
    /// `entries/<N>[.p/<W>]`. `None` if it does not follow the spec exactly.
    pub fn parse_path(path: &str) -> Option<Self> {
        let (level, rest) = path.split_once('/')?;
        let level = if level == "entries" {
            None
        } else {
            Some(parse_decimal(level, 63)? as u8)
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((n, w)) => (n, parse_decimal(w, 255).filter(|w| *w >= 1)? as u16),
            None => (rest, TILE_WIDTH as u16),
        };
        let mut value: u64 = 0;
        let elements: Vec<&str> = index.split('/').collect();
        for (i, e) in elements.iter().enumerate() {
            let last = i + 1 == elements.len();
            let digits = if last { *e } else { e.strip_prefix('x')? };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            value = value
                .checked_mul(1000)?
                .checked_add(digits.parse::<u64>().ok()?)?;
        }
        // The shortest encoding only: no leading all-zero groups.
        if elements.len() > 1 && elements[0] == "x000" {
            return None;
        }
        Some(Self {
            level,
            index: value,
            width,
        })
    }

    /// The URL path after `tile/`.
    pub fn path(&self) -> String {
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let mut out = match self.level {
            Some(l) => format!("{l}/"),
            None => "entries/".to_owned(),
        };
        for (i, g) in groups.iter().rev().enumerate() {
            let prefix = if i + 1 < groups.len() { "x" } else { "" };
            out.push_str(&format!("{prefix}{g:03}/"));
        }
        out.pop();
        if self.width < TILE_WIDTH as u16 {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// Whether this tile can be served for a log whose signed size is `size`: all of its
    /// hashes exist. A partial tile is an immutable prefix of its full tile, so partial
    /// tiles of earlier checkpoints stay available as the log grows; empty tiles never are.
    pub fn available_in(&self, size: u64) -> bool {
        let level = u32::from(self.level.unwrap_or(0));
        let Some(span) = TILE_WIDTH.checked_pow(level) else {
            return false;
        };
        let hashes_at_level = size / span; // complete subtrees of height 8·level
        self.width >= 1
            && self
                .index
                .checked_mul(TILE_WIDTH)
                .and_then(|start| start.checked_add(u64::from(self.width)))
                .is_some_and(|end| end <= hashes_at_level)
    }

    /// The first entry (or hash) index the tile covers at its level.
    pub fn start(&self) -> u64 {
        self.index.saturating_mul(TILE_WIDTH)
    }
}

/// A decimal with no leading zeros, at most `max`.
fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok().filter(|v| *v <= max)
}

/// The hash of the complete subtree at `level`/`index` from hashes of the tile level at
/// or below it: `tile_hashes(tile_level, start, count)` must return `count` consecutive
/// hashes of that tile level.
pub fn subtree_from_tile_levels<E>(
    level: u8,
    index: u64,
    tile_hashes: impl FnOnce(u8, u64, u64) -> Result<Vec<Hash>, E>,
) -> Result<Hash, E> {
    let tile_level = level / TILE_HEIGHT;
    let extra = level % TILE_HEIGHT;
    let count = 1u64 << extra;
    let mut layer = tile_hashes(tile_level, index << extra, count)?;
    while layer.len() > 1 {
        layer = layer.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    // `tile_hashes` returned `count` ≥ 1 hashes, so one remains.
    Ok(layer[0])
}

/// The hash stored at tile level `tile_level + 1` for 256 consecutive hashes of
/// `tile_level`: the root of the perfect tree over them.
pub fn tile_root(hashes: &[Hash]) -> Hash {
    let mut layer = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    layer.first().copied().unwrap_or(crate::EMPTY_ROOT)
}
