//! Tile paths from URLs: parsing never panics, accepts only the canonical spelling, and
//! what parses prints back to the same path.
#![no_main]

use custodia_tlog::Tile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data)
        && let Some(tile) = Tile::parse_path(path)
    {
        assert_eq!(tile.path(), path);
        let _ = tile.available_in(u64::from(tile.width) << 20);
    }
});
