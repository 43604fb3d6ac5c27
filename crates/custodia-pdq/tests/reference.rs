//! Hashes agree with Meta's reference implementation: `tests/data/expected.txt` was made
//! by `tests/data/make.py` with the `pdqhash` package (Meta's C++ code) on the same
//! images. Meta's stated tolerance for implementations is 10 bits.

use custodia_pdq::{PdqHash, hash_rgb};

fn hash_file(name: &str) -> (PdqHash, u8) {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let img = image::open(&path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    hash_rgb(w as usize, h as usize, img.as_raw())
}

fn expected() -> Vec<(String, PdqHash, u8)> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/data/expected.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next().unwrap().to_owned();
            let hash = PdqHash::from_hex(f.next().unwrap()).unwrap();
            let quality = f.next().unwrap().parse().unwrap();
            (name, hash, quality)
        })
        .collect()
}

#[test]
fn hashes_agree_with_the_reference_within_ten_bits() {
    let all = expected();
    assert!(all.len() >= 6);
    for (name, want, want_quality) in &all {
        let (got, quality) = hash_file(name);
        let d = got.distance(want);
        assert!(
            d <= 10,
            "{name}: {d} bits from the reference ({got} vs {want})"
        );
        assert!(
            (i32::from(quality) - i32::from(*want_quality)).abs() <= 2,
            "{name}: quality {quality} vs {want_quality}"
        );
    }
}

#[test]
fn the_same_picture_resized_or_recompressed_stays_close_and_others_are_far() {
    let (a, _) = hash_file("scene-a.png");
    let (small, _) = hash_file("scene-a-small.jpg");
    let (q60, _) = hash_file("scene-a-q60.jpg");
    assert!(a.distance(&small) <= 31, "{}", a.distance(&small));
    assert!(a.distance(&q60) <= 31, "{}", a.distance(&q60));
    for other in ["scene-b.png", "scene-c.png", "scene-d.png"] {
        let (h, _) = hash_file(other);
        assert!(a.distance(&h) > 60, "{other}: {}", a.distance(&h));
    }
}

#[test]
fn hex_and_bytes_round_trip() {
    let (h, _) = hash_file("scene-b.png");
    assert_eq!(PdqHash::from_hex(&h.to_string()), Some(h));
    assert_eq!(PdqHash::from_bytes(h.to_bytes()), h);
    assert_eq!(PdqHash::from_hex("xyz"), None);
    let (tiny, q) = hash_rgb(4, 4, &[0; 48]);
    assert_eq!((tiny.distance(&PdqHash::from_bytes([0; 32])), q), (0, 0));
}
