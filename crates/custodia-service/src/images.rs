//! Images in uploads: decoded safely (limits on dimensions and allocation, checked before
//! any pixel is decompressed), PDQ-hashed, and matched against the PDQ lists through an
//! in-memory index that loads new list entries as they are imported.

use std::io::Cursor;
use std::sync::Mutex;

use custodia_pdq::{PdqHash, PdqIndex};

use crate::{Service, ServiceError, ServiceResult};

/// The largest side of an image accepted.
const MAX_SIDE: u32 = 16_384;
/// The most memory decoding one image may take.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// Larger images are reduced to this side before hashing (PDQ is robust to resizing).
const HASH_SIDE: u32 = 1024;

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

/// Decodes an image within the limits and returns its PDQ hash and quality. `Err` for
/// anything that is not a whole, decodable image within the limits.
pub fn pdq_of(bytes: &[u8]) -> Result<(PdqHash, u8), String> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    let img = if img.width().max(img.height()) > HASH_SIDE {
        img.thumbnail(HASH_SIDE, HASH_SIDE)
    } else {
        img
    };
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(custodia_pdq::hash_rgb(w as usize, h as usize, rgb.as_raw()))
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
