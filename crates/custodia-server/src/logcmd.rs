//! `custodia log …`: key generation and the auditor's verifier.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use custodia_audit::EntryView;
use custodia_sdk::{Client, Method};
use custodia_tlog::{
    Checkpoint, Hash, NoteSigner, NoteVerifier, SignedNote, SubtreeSource, TILE_WIDTH, Tile,
    leaf_hash, root_hash, tile_root,
};

/// `custodia log …` commands.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Generate a signing key (for a log or a witness) and print its verifier key.
    Keygen {
        /// Key name, e.g. example.org/custodia/audit.
        #[arg(long)]
        name: String,
        /// Where to write the private key (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Make a witness's cosigner key (C2SP cosignature/v1) instead of a log key.
        #[arg(long)]
        witness: bool,
    },
    /// Print the verifier key of a server's audit log.
    PublicKey {
        /// The server's data directory.
        #[arg(long, default_value = "custodia-data")]
        data_dir: PathBuf,
    },
    /// Verify a log: signature, witness quorum, entries, root, and consistency with the
    /// last run.
    Verify {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// Where the last verified checkpoint is remembered.
        #[arg(long)]
        state: PathBuf,
    },
    /// Prove that one entry is in the log: fetch the entry and the tiles its inclusion
    /// proof needs, and check the proof against the signed checkpoint.
    Inclusion {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// The entry's index (from a receipt).
        #[arg(long)]
        index: u64,
        /// The leaf hash the entry must have (hex, from a receipt).
        #[arg(long)]
        leaf_hash: Option<String>,
    },
    /// Prove that the log still extends an earlier checkpoint (a receipt's, or a
    /// `verify --state` file): fetch the tiles of the consistency proof and check it.
    Consistency {
        /// The log.
        #[command(flatten)]
        log: LogArgs,
        /// A file holding the earlier signed checkpoint.
        #[arg(long)]
        old: PathBuf,
    },
}

/// Where a log is and how to trust it.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// The auditor URL, e.g. https://127.0.0.1:8444.
    #[arg(long)]
    pub url: String,
    /// The log's verifier key (`custodia log public-key`).
    #[arg(long, env = "CUSTODIA_LOG_KEY")]
    pub key: String,
    /// The CA certificate of the auditor listener.
    #[arg(long, env = "CUSTODIA_CA_CERT")]
    pub ca_cert: PathBuf,
    /// The witnesses whose cosignatures are required.
    #[command(flatten)]
    pub witnesses: WitnessArgs,
}

impl LogArgs {
    /// A client for the log, its key, and the witness policy.
    pub fn open(&self) -> anyhow::Result<(Client, NoteVerifier, WitnessPolicy)> {
        let ca = fs::read(&self.ca_cert)
            .with_context(|| format!("reading the CA certificate {}", self.ca_cert.display()))?;
        let key = NoteVerifier::parse(&self.key).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
        let witnesses = WitnessPolicy::new(&self.witnesses)?;
        Ok((Client::new(&self.url, &ca)?, key, witnesses))
    }
}

/// The witnesses an auditor trusts, and how many must have cosigned.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WitnessArgs {
    /// A witness's verifier key (as `custodia witness` prints it). Repeatable.
    #[arg(long = "witness")]
    pub witnesses: Vec<String>,
    /// How many of the given witnesses must have cosigned the checkpoint. Default: all.
    #[arg(long)]
    pub quorum: Option<usize>,
}

/// Checked witness keys and quorum.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    keys: Vec<NoteVerifier>,
    quorum: usize,
}

impl WitnessPolicy {
    /// Parses the keys; the quorum defaults to all of them.
    pub fn new(args: &WitnessArgs) -> anyhow::Result<Self> {
        let keys = args
            .witnesses
            .iter()
            .map(|k| {
                NoteVerifier::parse(k)
                    .ok()
                    .filter(|v| v.kind() == custodia_tlog::KeyKind::CosignatureV1)
                    .with_context(|| format!("--witness {k:?} is not a witness verifier key"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let quorum = args.quorum.unwrap_or(keys.len());
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

/// Runs one log command.
pub async fn run(cmd: LogCommand) -> anyhow::Result<()> {
    match cmd {
        LogCommand::Keygen { name, out, witness } => {
            let kind = if witness {
                custodia_tlog::KeyKind::CosignatureV1
            } else {
                custodia_tlog::KeyKind::Ed25519
            };
            let signer =
                NoteSigner::generate_kind(&name, kind).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
            f.write_all(signer.to_text().as_bytes())?;
            f.sync_all()?;
            println!("{}", signer.verifier());
        }
        LogCommand::PublicKey { data_dir } => {
            let path = data_dir.join("log.key");
            let text = zeroize::Zeroizing::new(
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
            );
            let signer = NoteSigner::from_text(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            println!("{}", signer.verifier());
        }
        LogCommand::Verify { log, state } => {
            let (client, key, witnesses) = log.open()?;
            let verified = verify(&client, &key, &witnesses, &state).await?;
            println!(
                "verified: {} entries, root {}",
                verified.size,
                hex(&verified.root)
            );
        }
        LogCommand::Inclusion {
            log,
            index,
            leaf_hash,
        } => {
            let (client, key, witnesses) = log.open()?;
            let proven = prove_inclusion(&client, &key, &witnesses, index).await?;
            if let Some(expected) = leaf_hash
                && !expected.eq_ignore_ascii_case(&hex(&proven.leaf_hash))
            {
                bail!(
                    "entry {index} has leaf hash {}, not {expected}: it is not the entry of the receipt",
                    hex(&proven.leaf_hash)
                );
            }
            println!(
                "entry {index} ({}, case {}) is in the log of {} entries, root {}",
                proven.entry.kind.as_str(),
                proven.entry.case.as_deref().unwrap_or("-"),
                proven.checkpoint.size,
                hex(&proven.checkpoint.root)
            );
            println!("leaf hash {}", hex(&proven.leaf_hash));
            for h in &proven.proof {
                println!("proof {}", hex(h));
            }
        }
        LogCommand::Consistency { log, old } => {
            let (client, key, witnesses) = log.open()?;
            let bytes = fs::read(&old).with_context(|| format!("reading {}", old.display()))?;
            let (old, _) = open_checkpoint(&bytes, &key)
                .with_context(|| format!("the earlier checkpoint in {}", old.display()))?;
            let (new, proof) = prove_consistency(&client, &key, &witnesses, &old).await?;
            println!(
                "the log of {} entries (root {}) extends the earlier one of {} entries (root {})",
                new.size,
                hex(&new.root),
                old.size,
                hex(&old.root)
            );
            for h in &proof {
                println!("proof {}", hex(h));
            }
        }
    }
    Ok(())
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

/// Checks the log at `client` and remembers its checkpoint in `state`.
pub async fn verify(
    client: &Client,
    key: &NoteVerifier,
    witnesses: &WitnessPolicy,
    state: &Path,
) -> anyhow::Result<Checkpoint> {
    let (cp, note) = served_checkpoint(client, key, witnesses).await?;
    let remembered = match fs::read(state) {
        Ok(bytes) => Some(
            open_checkpoint(&bytes, key)
                .context("the remembered checkpoint in the state file")?
                .0,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", state.display())),
    };
    if let Some(old) = &remembered {
        can_extend(old, &cp).context("compared with the state file")?;
    }

    // Every entry, from the bundles, checked against the level-0 tiles.
    let mut leaves: Vec<Hash> = Vec::with_capacity(usize::try_from(cp.size).unwrap_or(0));
    let mut decoded = Vec::with_capacity(leaves.capacity());
    for tile in tiles(None, cp.size) {
        let bundle = fetch(client, &format!("/tile/{}", tile.path())).await?;
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
        leaves.extend(entries.iter().map(|e| leaf_hash(e)));
        decoded.extend(entries.iter().map(|e| EntryView::parse(e).err()));
    }
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|l| l.len() as u64 >= TILE_WIDTH) {
        let next = levels
            .last()
            .map(|l| l.chunks_exact(256).map(tile_root).collect())
            .unwrap_or_default();
        levels.push(next);
    }
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
    let source = Levels(levels);
    let root = root_hash(&source, cp.size)
        .map_err(|()| anyhow::anyhow!("internal: incomplete tile levels"))?;
    if root != cp.root {
        bail!(
            "the entries do not hash to the checkpoint's root at size {}: the log was altered",
            cp.size
        );
    }
    if let Some(old) = &remembered {
        let then = root_hash(&source, old.size)
            .map_err(|()| anyhow::anyhow!("internal: incomplete tile levels"))?;
        if then != old.root {
            bail!(
                "the log is not consistent with the remembered checkpoint at size {}: the log forked or its history was rewritten",
                old.size
            );
        }
    }
    // The tree is intact; every entry must also be an audit entry.
    if let Some((i, Some(e))) = decoded.iter().enumerate().find(|(_, e)| e.is_some()) {
        bail!("entry {i} is in the signed tree but is not a valid audit entry: {e}");
    }
    let tmp = state.with_extension("tmp");
    fs::write(&tmp, note.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, state).with_context(|| format!("writing {}", state.display()))?;
    Ok(cp)
}

/// Refuses a checkpoint `new` that cannot extend `old`: another log, or fewer entries.
fn can_extend(old: &Checkpoint, new: &Checkpoint) -> anyhow::Result<()> {
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
fn open_checkpoint(bytes: &[u8], key: &NoteVerifier) -> anyhow::Result<(Checkpoint, SignedNote)> {
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

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}
