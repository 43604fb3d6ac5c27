//! Tile paths and arithmetic, per c2sp.org/tlog-tiles.

use custodia_tlog::{
    Hash, SubtreeSource, Tile, leaf_hash, root_hash, subtree_from_tile_levels, tile_root,
};

#[test]
fn paths_follow_the_spec() {
    let t = |level: Option<u8>, index, width| Tile {
        level,
        index,
        width,
    };
    let cases = [
        (t(Some(0), 1_234_067, 256), "0/x001/x234/067"),
        (t(Some(0), 0, 256), "0/000"),
        (t(Some(2), 1, 17), "2/001.p/17"),
        (t(None, 999, 256), "entries/999"),
        (t(None, 1000, 1), "entries/x001/000.p/1"),
    ];
    for (tile, path) in cases {
        assert_eq!(tile.path(), path);
        assert_eq!(Tile::parse_path(path), Some(tile));
    }
    for bad in [
        "0/1",
        "0/0001",
        "00/000",
        "64/000",
        "0/x000/001",
        "0/001/002",
        "0/000.p/0",
        "0/000.p/256",
        "0/000.p/07",
        "x/000",
        "0/-01",
        "0",
        "entries/x1/000",
    ] {
        assert_eq!(Tile::parse_path(bad), None, "{bad}");
    }
}

#[test]
fn which_tiles_a_tree_can_serve() {
    // The spec's example: size 70,000 has 273 full level-0 tiles, a partial level-0 tile
    // of width 112, one full level-1 tile, a partial level-1 tile of width 17, and a
    // partial level-2 tile of width 1.
    let has = |level, index, width| {
        Tile {
            level: Some(level),
            index,
            width,
        }
        .available_in(70_000)
    };
    assert!(has(0, 272, 256) && !has(0, 273, 256));
    assert!(has(0, 273, 112) && !has(0, 273, 113));
    assert!(
        has(0, 273, 100),
        "a partial tile of an earlier checkpoint stays available"
    );
    assert!(has(1, 0, 256) && has(1, 1, 17) && !has(1, 1, 18) && !has(1, 1, 256));
    assert!(has(2, 0, 1) && !has(2, 0, 2) && !has(3, 0, 1));
    // "A tree of size 256 will be represented by a full level 0 tile and a partial level 1
    // tile of width 1."
    assert!(
        Tile {
            level: Some(0),
            index: 0,
            width: 256
        }
        .available_in(256)
    );
    assert!(
        Tile {
            level: Some(1),
            index: 0,
            width: 1
        }
        .available_in(256)
    );
    assert!(
        !Tile {
            level: Some(0),
            index: 1,
            width: 1
        }
        .available_in(256),
        "no empty tiles"
    );
    assert!(
        Tile {
            level: None,
            index: 273,
            width: 112
        }
        .available_in(70_000)
    );
    assert!(
        !Tile {
            level: Some(0),
            index: u64::MAX,
            width: 1
        }
        .available_in(u64::MAX)
    );
}

/// Stores only tile-level hashes, as a log does.
struct TileLevels(Vec<Vec<Hash>>);

impl TileLevels {
    fn build(leaves: &[Hash]) -> Self {
        let mut levels = vec![leaves.to_vec()];
        while levels.last().unwrap().len() >= 256 {
            let next = levels
                .last()
                .unwrap()
                .chunks_exact(256)
                .map(tile_root)
                .collect();
            levels.push(next);
        }
        Self(levels)
    }
}

impl SubtreeSource for TileLevels {
    type Error = ();
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, ()> {
        subtree_from_tile_levels(level, index, |tl, start, count| {
            let l = self.0.get(tl as usize).ok_or(())?;
            l.get(start as usize..(start + count) as usize)
                .map(<[Hash]>::to_vec)
                .ok_or(())
        })
    }
}

#[test]
fn roots_from_tile_levels_match_roots_from_leaves() {
    struct Leaves(Vec<Hash>);
    impl SubtreeSource for Leaves {
        type Error = ();
        fn subtree(&self, level: u8, index: u64) -> Result<Hash, ()> {
            let w = 1usize << level;
            Ok(tile_root(
                &self.0[index as usize * w..(index as usize + 1) * w],
            ))
        }
    }
    let leaves: Vec<Hash> = (0u32..70_000)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let tiles = TileLevels::build(&leaves);
    assert_eq!(tiles.0.len(), 3, "levels 0, 1 and 2");
    let plain = Leaves(leaves);
    for size in [1, 255, 256, 257, 65_535, 65_536, 65_537, 70_000] {
        assert_eq!(
            root_hash(&tiles, size),
            root_hash(&plain, size),
            "size {size}"
        );
    }
}
