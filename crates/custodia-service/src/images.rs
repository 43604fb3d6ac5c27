//! Images in uploads: decoded safely (limits on dimensions and allocation, checked before
//! any pixel is decompressed), PDQ-hashed, and matched against the PDQ lists through an
//! in-memory index that loads new list entries as they are imported.

use std::io::Cursor;
use std::sync::Mutex;

use custodia_pdq::{PdqHash, PdqIndex};

use crate::{Service, ServiceError, ServiceResult};

/// The largest side of an image accepted.
const MAX_SIDE: u32 = 16_384;
/// The most memory decoding one image may take (hashing adds 4 bytes a pixel for its
/// luminance, after which the decoded image is dropped).
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// The PDQ index and how far into the stored lists it has loaded.
pub(crate) struct PdqLists {
    // std Mutex: held to search or extend the index, never across an await.
    index: Mutex<(PdqIndex<String>, i64)>,
}

impl PdqLists {
    pub(crate) fn new() -> Self {
        Self {
            index: Mutex::new((PdqIndex::new(), 0)),
        }
    }
}

/// Whether a sniffed content type is an image this server hashes.
pub(crate) fn is_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Decodes an image within the limits and returns its PDQ hash and quality, hashed at full
/// resolution as hash lists are made (the `pdqhash` wrapper of Meta's code hashes the
/// original; shrinking first moved hashes 12-14 bits). `Err` for anything that is not a
/// whole, decodable image within the limits.
pub(crate) fn pdq_of(bytes: &[u8]) -> Result<(PdqHash, u8), String> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    // The luminance straight from the decoded pixels (no RGB copy), then the image goes.
    let mut luma = match &img {
        image::DynamicImage::ImageRgb8(b) => custodia_pdq::luma(b.as_raw(), 3),
        image::DynamicImage::ImageRgba8(b) => custodia_pdq::luma(b.as_raw(), 4),
        image::DynamicImage::ImageLuma8(b) => custodia_pdq::luma(b.as_raw(), 1),
        image::DynamicImage::ImageLumaA8(b) => custodia_pdq::luma(b.as_raw(), 2),
        other => custodia_pdq::luma(other.to_rgb8().as_raw(), 3),
    };
    drop(img);
    Ok(custodia_pdq::hash_luma(w, h, &mut luma))
}

impl Service {
    /// The PDQ list within `max_distance` of `hash`, after loading any entries imported
    /// since the last look.
    pub(crate) async fn pdq_match(&self, hash: &PdqHash) -> ServiceResult<Option<String>> {
        let inner = &self.inner;
        let loaded = inner.pdq.index.lock().unwrap_or_else(|e| e.into_inner()).1;
        let new = inner.store.attachments.pdq_after(loaded).await?;
        let mut guard = inner.pdq.index.lock().unwrap_or_else(|e| e.into_inner());
        let (index, upto) = &mut *guard;
        for (id, bytes, list) in new {
            if id > *upto {
                index.insert(PdqHash::from_bytes(bytes), list);
                *upto = id;
            }
        }
        Ok(index
            .nearest(hash, inner.config.pdq_max_distance)
            .map(|(list, _)| list.clone()))
    }
}

/// The refusal for an image that cannot be read.
pub(crate) fn unreadable() -> ServiceError {
    ServiceError::Rejected("this image cannot be read; send a complete PNG, JPEG, GIF or WebP")
}

#[cfg(test)]
mod tests {
    /// Images over 1024 px in PNG, JPEG and WebP hash within 2 bits of Meta's reference at
    /// full resolution (`custodia-pdq/tests/data/make_large.py`), quality within 2.
    #[test]
    fn large_images_hash_as_the_reference_does_at_full_resolution() {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../custodia-pdq/tests/data");
        let expected = std::fs::read_to_string(format!("{data}/expected-large.txt")).unwrap();
        let mut formats = Vec::new();
        for line in expected.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let bytes = std::fs::read(format!("{data}/{}", f[0])).unwrap();
            let (hash, quality) = super::pdq_of(&bytes).unwrap();
            let want = custodia_pdq::PdqHash::from_hex(f[1]).unwrap();
            let d = hash.distance(&want);
            assert!(d <= 2, "{}: {d} bits from the reference", f[0]);
            let want_quality: i32 = f[2].parse().unwrap();
            assert!(
                (i32::from(quality) - want_quality).abs() <= 2,
                "{}: quality {quality} vs {want_quality}",
                f[0]
            );
            formats.push(f[0].rsplit('.').next().unwrap().to_owned());
        }
        for format in ["png", "jpg", "webp"] {
            assert!(formats.iter().any(|f| f == format), "{format} is tested");
        }
    }
}
