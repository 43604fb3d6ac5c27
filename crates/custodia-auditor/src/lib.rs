//! Reading a custodia audit log from its auditor listener, trusting nothing the server
//! says: the checkpoint's signature by the log key and its witness quorum, every entry
//! checked against the signed root, and single inclusion and consistency proofs fetched
//! tile by tile. Used by `custodia log` (auditors), by `custodia-client chat
//! access-history --verify` (members scanning for the entries about them), and by the
//! transparency report.

use anyhow::{Context, bail};
use custodia_sdk::{Client, Method};
use custodia_tlog::{
    Checkpoint, Hash, NoteVerifier, SignedNote, SubtreeSource, TILE_WIDTH, Tile, leaf_hash,
    root_hash, tile_root,
};
use custodia_transparency::EntryView;

/// Checked witness keys and quorum.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    keys: Vec<NoteVerifier>,
    quorum: usize,
}

impl WitnessPolicy {
    /// Parses the witnesses' verifier keys; the quorum defaults to all of them.
    pub fn new(witnesses: &[String], quorum: Option<usize>) -> anyhow::Result<Self> {
        let keys = witnesses
            .iter()
            .map(|k| {
                NoteVerifier::parse(k)
                    .ok()
                    .filter(|v| v.kind() == custodia_tlog::KeyKind::CosignatureV1)
                    .with_context(|| format!("--witness {k:?} is not a witness verifier key"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let quorum = quorum.unwrap_or(keys.len());
        if quorum > keys.len() {
            bail!(
                "--quorum {quorum} is more than the {} --witness keys given",
                keys.len()
            );
        }
        Ok(Self { keys, quorum })
    }

    /// Checks that enough of the witnesses cosigned `note`.
    fn check(&self, note: &SignedNote) -> anyhow::Result<()> {
        let cosigned = note.verified_by(&self.keys);
        if cosigned.len() < self.quorum {
            let missing: Vec<&str> = self
                .keys
                .iter()
                .filter(|k| !cosigned.contains(k))
                .map(NoteVerifier::name)
                .collect();
            bail!(
                "the checkpoint is cosigned by {} of the witnesses, fewer than the quorum of {}; no valid cosignature from {}",
                cosigned.len(),
                self.quorum,
                missing.join(", ")
            );
        }
        Ok(())
    }
}

/// An entry proven to be in the log.
#[derive(Debug)]
pub struct ProvenEntry {
    /// The checkpoint it is proven against.
    pub checkpoint: Checkpoint,
    /// The entry, decoded.
    pub entry: EntryView,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The inclusion proof.
    pub proof: Vec<Hash>,
}

/// Fetches the signed checkpoint and checks its signature and witness quorum.
async fn served_checkpoint(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
) -> anyhow::Result<(Checkpoint, SignedNote)> {
    let text = fetch(client, "/checkpoint").await?;
    let (cp, note) = open_checkpoint(&text, key).context("the served checkpoint")?;
    witnesses.check(&note).context("the served checkpoint")?;
    Ok((cp, note))
}

/// Proves that entry `index` is in the log's current checkpoint, from the tiles.
pub async fn prove_inclusion(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
    index: u64,
) -> anyhow::Result<ProvenEntry> {
    let (cp, _) = served_checkpoint(client, key, witnesses).await?;
    if index >= cp.size {
        bail!(
            "the log has {} entries, so there is no entry {index}",
            cp.size
        );
    }
    let bundle = tiles(None, cp.size)
        .into_iter()
        .find(|t| t.start() <= index && index < t.start() + u64::from(t.width))
        .context("internal: no bundle holds the entry")?;
    let bytes = fetch(client, &format!("/tile/{}", bundle.path())).await?;
    let entries =
        parse_bundle(&bytes).with_context(|| format!("entry bundle {}", bundle.path()))?;
    let entry = usize::try_from(index - bundle.start())
        .ok()
        .and_then(|i| entries.get(i))
        .with_context(|| format!("entry bundle {} is missing entry {index}", bundle.path()))?;
    let leaf = leaf_hash(entry);
    let mut source = FetchedTiles::new(cp.size);
    let proof = source
        .compute(client, |t| {
            custodia_tlog::inclusion_proof(t, index, cp.size)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    custodia_tlog::verify_inclusion(index, cp.size, &leaf, &proof, &cp.root).map_err(|e| {
        anyhow::anyhow!(
            "entry {index} is not proven to be in the signed log ({e}): the entry or the tiles were altered"
        )
    })?;
    let entry = EntryView::parse(entry)
        .with_context(|| format!("entry {index} is in the log but is not an audit entry"))?;
    Ok(ProvenEntry {
        checkpoint: cp,
        entry,
        leaf_hash: leaf,
        proof,
    })
}

/// Proves that the log's current checkpoint extends `old`; returns it and the proof.
pub async fn prove_consistency(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
    old: &Checkpoint,
) -> anyhow::Result<(Checkpoint, Vec<Hash>)> {
    let (cp, _) = served_checkpoint(client, key, witnesses).await?;
    can_extend(old, &cp)?;
    let mut source = FetchedTiles::new(cp.size);
    let proof = source
        .compute(client, |t| {
            custodia_tlog::consistency_proof(t, old.size, cp.size)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    custodia_tlog::verify_consistency(old.size, cp.size, &old.root, &cp.root, &proof).map_err(
        |e| {
            anyhow::anyhow!(
                "the log is not consistent with the earlier checkpoint at size {} ({e}): the log forked or its history was rewritten",
                old.size
            )
        },
    )?;
    Ok((cp, proof))
}

/// Tiles fetched on demand, as a subtree source: a computation that needs a tile not yet
/// fetched fails, the tiles it asked for are fetched, and it runs again.
struct FetchedTiles {
    size: u64,
    tiles: std::collections::HashMap<(u8, u64), Vec<Hash>>,
    // RefCell: `SubtreeSource::subtree` takes `&self`; the set is only touched between
    // fetches, on this one task.
    missing: std::cell::RefCell<std::collections::BTreeSet<(u8, u64)>>,
}

impl FetchedTiles {
    fn new(size: u64) -> Self {
        Self {
            size,
            tiles: Default::default(),
            missing: Default::default(),
        }
    }

    async fn compute<T>(
        &mut self,
        client: &Client,
        f: impl Fn(&Self) -> Result<T, ()>,
    ) -> anyhow::Result<T> {
        loop {
            if let Ok(v) = f(self) {
                return Ok(v);
            }
            let missing = std::mem::take(&mut *self.missing.borrow_mut());
            if missing.is_empty() {
                bail!("internal: a proof needs hashes the log's tiles do not hold");
            }
            for (level, index) in missing {
                let tile = tiles(Some(level), self.size)
                    .into_iter()
                    .find(|t| t.index == index)
                    .with_context(|| format!("the log has no tile {level}/{index}"))?;
                let bytes = fetch(client, &format!("/tile/{}", tile.path())).await?;
                if bytes.len() != 32 * usize::from(tile.width) {
                    bail!(
                        "tile {} holds {} bytes where {} hashes were expected",
                        tile.path(),
                        bytes.len(),
                        tile.width
                    );
                }
                let hashes = bytes
                    .chunks_exact(32)
                    .map(|c| c.try_into().unwrap_or([0; 32]))
                    .collect();
                self.tiles.insert((level, index), hashes);
            }
        }
    }
}

impl SubtreeSource for FetchedTiles {
    type Error = ();
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, ()> {
        custodia_tlog::subtree_from_tile_levels(level, index, |tl, start, count| {
            let mut out = Vec::new();
            let mut absent = false;
            for i in start..start + count {
                let at = (tl, i / TILE_WIDTH);
                match self.tiles.get(&at) {
                    Some(t) => {
                        let k = usize::try_from(i % TILE_WIDTH).map_err(|_| ())?;
                        out.push(*t.get(k).ok_or(())?);
                    }
                    None => {
                        self.missing.borrow_mut().insert(at);
                        absent = true;
                    }
                }
            }
            if absent { Err(()) } else { Ok(out) }
        })
    }
}

/// Refuses a checkpoint `new` that cannot extend `old`: another log, or fewer entries.
pub fn can_extend(old: &Checkpoint, new: &Checkpoint) -> anyhow::Result<()> {
    if old.origin != new.origin {
        bail!(
            "the checkpoint is for log {:?}, but the earlier one is of log {:?}",
            new.origin,
            old.origin
        );
    }
    if new.size < old.size {
        bail!(
            "the log shrank from {} to {} entries: it was truncated or rolled back",
            old.size,
            new.size
        );
    }
    Ok(())
}

/// Parses and verifies a signed checkpoint.
pub fn open_checkpoint(
    bytes: &[u8],
    key: &NoteVerifier,
) -> anyhow::Result<(Checkpoint, SignedNote)> {
    let note = SignedNote::parse(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    note.verify(std::slice::from_ref(key))
        .map_err(|e| match e {
            custodia_tlog::NoteError::NoKnownSignature => {
                anyhow::anyhow!(
                    "it is not signed by the log key {} (signed by an unknown key)",
                    key.name()
                )
            }
            other => anyhow::anyhow!("{other}"),
        })?;
    let cp = Checkpoint::parse(&note.text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if cp.origin != key.name() {
        bail!(
            "its origin {:?} is not the log key's name {:?}",
            cp.origin,
            key.name()
        );
    }
    Ok((cp, note))
}

/// The tiles of one level (`None`: entry bundles) that a tree of `size` has.
fn tiles(level: Option<u8>, size: u64) -> Vec<Tile> {
    let span = TILE_WIDTH.saturating_pow(u32::from(level.unwrap_or(0)));
    let hashes = size / span;
    let mut out: Vec<Tile> = (0..hashes / TILE_WIDTH)
        .map(|index| Tile {
            level,
            index,
            width: 256,
        })
        .collect();
    let rest = u16::try_from(hashes % TILE_WIDTH).unwrap_or(0);
    if rest > 0 {
        out.push(Tile {
            level,
            index: hashes / TILE_WIDTH,
            width: rest,
        });
    }
    out
}

fn parse_bundle(bytes: &[u8]) -> anyhow::Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(2)
            .context("a truncated length prefix")?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (entry, tail) = tail.split_at_checked(len).context("a truncated entry")?;
        out.push(entry);
        rest = tail;
    }
    Ok(out)
}

async fn fetch(client: &Client, path: &str) -> anyhow::Result<Vec<u8>> {
    let (status, _, body) = client
        .raw(Method::GET, path, "text/plain", Vec::new())
        .await
        .with_context(|| format!("fetching {path}"))?;
    if status != 200 {
        bail!(
            "fetching {path}: the log answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

/// Recomputed tile levels, as a subtree source.
struct Levels(Vec<Vec<Hash>>);

impl SubtreeSource for Levels {
    type Error = ();
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, ()> {
        custodia_tlog::subtree_from_tile_levels(level, index, |tl, start, count| {
            let l = self.0.get(usize::from(tl)).ok_or(())?;
            let (s, c) = (
                usize::try_from(start).map_err(|_| ())?,
                usize::try_from(count).map_err(|_| ())?,
            );
            l.get(s..s + c).map(<[Hash]>::to_vec).ok_or(())
        })
    }
}

/// A hash in lower-case hex.
pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A log read whole from its auditor listener and checked against its signed checkpoint.
pub struct VerifiedLog {
    /// The checkpoint the entries were checked against (signature and witness quorum
    /// checked).
    pub checkpoint: Checkpoint,
    /// The checkpoint as the signed note the log served.
    pub note: SignedNote,
    levels: Levels,
}

impl VerifiedLog {
    /// The root of the log's first `size` entries, recomputed from the entries read (to
    /// check an earlier checkpoint: equal roots mean the log still extends it).
    pub fn root_at(&self, size: u64) -> anyhow::Result<Hash> {
        if size > self.checkpoint.size {
            bail!("the log has {} entries, not {size}", self.checkpoint.size);
        }
        root_hash(&self.levels, size)
            .map_err(|()| anyhow::anyhow!("internal: incomplete tile levels"))
    }
}

/// How much of a log [`read_log`] checks besides its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiles {
    /// Also every hash tile the log serves, against the hashes recomputed from the
    /// entries (an auditor: proofs served from wrong tiles would fail others).
    Check,
    /// Only when the entries do not hash to the signed root, to name the altered entry (a
    /// member's scan, a report: the root alone proves the entries).
    OnMismatch,
}

/// Entry bundles fetched at once.
const FETCHES_IN_FLIGHT: usize = 4;

/// Reads every entry of the log at `client` and checks them against its checkpoint: the
/// checkpoint signed by `key` and cosigned by `witnesses`' quorum, every entry bundle whole,
/// the entries hashing to the signed root (and, as `tiles` says, the served hash tiles
/// matching them), and every entry a valid audit entry. `visit` sees each entry (its index
/// and bytes) in order as it is read; whatever it gathers counts only once this returns
/// `Ok`.
pub async fn read_log(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
    tiles_check: Tiles,
    mut visit: impl FnMut(u64, &[u8]),
) -> anyhow::Result<VerifiedLog> {
    use futures_util::StreamExt;
    let (cp, note) = served_checkpoint(client, key, witnesses).await?;
    let mut leaves: Vec<Hash> = Vec::with_capacity(usize::try_from(cp.size).unwrap_or(0));
    let mut invalid = None;
    let mut bundles = futures_util::stream::iter(tiles(None, cp.size))
        .map(|tile| async move {
            let path = format!("/tile/{}", tile.path());
            fetch(client, &path).await.map(|b| (tile, b))
        })
        .buffered(FETCHES_IN_FLIGHT);
    while let Some(fetched) = bundles.next().await {
        let (tile, bundle) = fetched?;
        let entries =
            parse_bundle(&bundle).with_context(|| format!("entry bundle {}", tile.path()))?;
        if entries.len() != usize::from(tile.width) {
            bail!(
                "entry bundle {} holds {} entries where the checkpoint needs {}: entries are missing (deleted?)",
                tile.path(),
                entries.len(),
                tile.width
            );
        }
        for e in entries {
            let index = leaves.len() as u64;
            if invalid.is_none()
                && let Err(error) = EntryView::parse(e)
            {
                invalid = Some((index, error));
            }
            leaves.push(leaf_hash(e));
            visit(index, e);
        }
    }
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|l| l.len() as u64 >= TILE_WIDTH) {
        let next = levels
            .last()
            .map(|l| l.chunks_exact(256).map(tile_root).collect())
            .unwrap_or_default();
        levels.push(next);
    }
    let log = VerifiedLog {
        checkpoint: cp,
        note,
        levels: Levels(levels),
    };
    let intact = log.root_at(log.checkpoint.size)? == log.checkpoint.root;
    if tiles_check == Tiles::Check || !intact {
        check_tiles(client, &log).await?;
    }
    if !intact {
        bail!(
            "the entries do not hash to the checkpoint's root at size {}: the log was altered",
            log.checkpoint.size
        );
    }
    // The tree is intact; every entry must also be an audit entry.
    if let Some((i, e)) = invalid {
        bail!("entry {i} is in the signed tree but is not a valid audit entry: {e}");
    }
    Ok(log)
}

/// Compares every hash tile the log serves with the hashes recomputed from its entries,
/// naming the first entry or tile that differs.
async fn check_tiles(client: &Client, log: &VerifiedLog) -> anyhow::Result<()> {
    let (levels, cp) = (&log.levels.0, &log.checkpoint);
    for (level, hashes) in levels.iter().enumerate() {
        let level = u8::try_from(level).context("too many tile levels")?;
        for tile in tiles(Some(level), cp.size) {
            let served = fetch(client, &format!("/tile/{}", tile.path())).await?;
            let start = usize::try_from(tile.start()).context("tile index")?;
            let expected: Vec<u8> = hashes[start..start + usize::from(tile.width)].concat();
            if served != expected {
                let at = served
                    .chunks(32)
                    .zip(expected.chunks(32))
                    .position(|(a, b)| a != b);
                match (level, at) {
                    (0, Some(i)) => bail!(
                        "entry {} does not match its leaf hash in tile {}: the entry was altered",
                        tile.start() + i as u64,
                        tile.path()
                    ),
                    _ => bail!(
                        "tile {} does not match the hashes recomputed from the entries",
                        tile.path()
                    ),
                }
            }
        }
    }
    Ok(())
}
