//! Configuration: defaults, then a TOML file, then `CUSTODIA_*` environment variables
//! (`__` separates nested keys), then command-line flags. Validated once into [`Config`].

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use custodia_core::{EpochScheme, RateLimit};
use custodia_keys::{CacheLimits, KeyringPassphrase};
use custodia_service::ServiceConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Where data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The embedded SQLite database in the data directory.
    Sqlite,
    /// A PostgreSQL database shared by every node (`postgres_url`).
    Postgres,
}

/// How live events reach other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FanoutKind {
    /// Within this node only.
    Local,
    /// Over NATS (`nats_url`).
    Nats,
}

/// The key epoch's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochKind {
    /// One data key per conversation per month.
    Month,
    /// One data key per conversation per day.
    Day,
}

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings as given, before validation. Every field is optional; unset means its value in
/// [`RawConfig::defaults`]. A key that is not one of these is refused (a typo is never
/// silently ignored).
#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Where the database, keyring and certificates live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Address of the TLS listener (HTTPS and WebSocket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The server's TLS certificate chain (PEM file), with `tls_key`, instead of the
    /// generated one. Read again on SIGHUP (connections are not dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM file) of `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Where the generated CA (its key) is kept: apart from the data directory, so nodes
    /// copied from it hold no CA key. Default: beside the data directory, `<data_dir>-ca`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_dir: Option<PathBuf>,
    /// Address of the read-only auditor listener (transparency log tiles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_listen: Option<String>,
    /// Address of the staff API's TLS listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_listen: Option<String>,
    /// Open connections per listener, in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Open connections per listener from one client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_address: Option<usize>,
    /// TLS handshakes in progress per listener from one client address (more are refused at
    /// once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_handshakes_per_address: Option<usize>,
    /// Seconds a client may take to send a request's head (also how long an idle keep-alive
    /// connection stays open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a stopping server (SIGTERM, Ctrl-C) gives requests in flight and live
    /// sessions to finish (sends acknowledged or refused, then close 1001) before it
    /// closes every connection left and exits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_secs: Option<u64>,
    /// Lifetime of a staff session, in minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_session_minutes: Option<u64>,
    /// Hours a staff member must hold a role before deciding access requests in it (a newly
    /// created or promoted account approves nothing at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_decide_after_hours: Option<u64>,
    /// E-mail domains of agencies the deployment has verified, e.g. `["met.police.uk",
    /// "fbi.gov"]` (each covers its subdomains): a legal request from an officer whose
    /// address is elsewhere is flagged for confirmation through a known channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_agency_domains: Option<Vec<String>>,
    /// Days messages are kept: the daily retention run destroys the keys of the epochs
    /// that ended longer ago (their messages and attachments are then unreadable and
    /// deleted), except what a preservation hold covers. Unset: kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// The audit log's origin line (and its key's name), fixed once the log exists. Unset:
    /// the auditor listener's scheme-less URL prefix (e.g. `127.0.0.1:8444`), as
    /// c2sp.org/tlog-tiles recommends; set it to the public name auditors use, e.g.
    /// `audit.example.org`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_origin: Option<String>,
    /// Key epoch: `month` or `day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<EpochKind>,
    /// Passphrase that wraps the keyring (argon2id). Only used when the keyring is created
    /// with one; afterwards it must always be given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring_passphrase: Option<String>,
    /// A PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): the KEKs then live in
    /// that token, used in place and never extractable, instead of the keyring file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_module: Option<PathBuf>,
    /// The label of the PKCS#11 token holding the KEKs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_token_label: Option<String>,
    /// The token's user PIN (better: `pkcs11_pin_file`, or CUSTODIA_PKCS11_PIN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_pin: Option<String>,
    /// A file holding the token's user PIN (its first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// The prefix of the KEK objects' labels in the token (`LABEL-v1`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_key_label: Option<String>,
    /// Most data keys held unwrapped in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dek_cache_capacity: Option<usize>,
    /// Longest a data key stays unwrapped in memory, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dek_cache_max_age_secs: Option<u64>,
    /// During a KEK rotation (`custodia admin keys rotate`), most keys and secrets each
    /// node rewraps per second in the background, so sends keep their latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kek_rewrap_per_sec: Option<u32>,
    /// Most members of one group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_group_members: Option<u32>,
    /// Lifetime of a user session, in hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ttl_hours: Option<u64>,
    /// Sign-in attempts allowed on one account from one client address in five minutes (a
    /// stranger's wrong guesses never lock the member out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_attempts_per_account: Option<u32>,
    /// Sign-in attempts allowed on one account from all addresses together in five minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_attempts_per_account_total: Option<u32>,
    /// Sign-ups allowed per client address in an hour (shared by every node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signups_per_address_per_hour: Option<u32>,
    /// Sign-in attempts allowed per client address in five minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_attempts_per_address: Option<u32>,
    /// Messages one account may send per minute (a burst of that many).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sends_per_minute: Option<u32>,
    /// The same during an account's first day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_account_sends_per_minute: Option<u32>,
    /// Messages an adult may send per hour to a minor in a direct conversation less than a
    /// day old (first contact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_contact_sends_per_hour: Option<u32>,
    /// The largest PDQ Hamming distance that counts as a hash list match (0–31).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdq_max_distance: Option<u32>,
    /// The lowest PDQ quality (0–100) trusted for matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdq_min_quality: Option<u8>,
    /// Hash lists (by the name given at import) whose matches open `normal`-priority
    /// cases; every other list's matches open `high` ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normal_priority_lists: Option<Vec<String>>,
    /// The largest attachment, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attachment_bytes: Option<u64>,
    /// A text rule file (TOML: `threshold`, and `[[rules]]` with `name`, `category`,
    /// `pattern` or `keywords`, `score`); messages reaching the threshold open a case.
    /// Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_rules: Option<PathBuf>,
    /// Log format: `text` or `json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Witnesses that cosign the audit log's checkpoints (`custodia witness`), each a table
    /// with `url` (https), `key` (its verifier key, as `custodia witness` prints it) and
    /// `ca_cert` (the CA certificate its listener uses). Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witnesses: Option<Vec<RawWitness>>,
    /// How many witnesses must cosign a checkpoint before the log keeps it and answers an
    /// append. Default: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_quorum: Option<usize>,
    /// Where data is stored: `sqlite` (a file in the data directory) or `postgres` (with
    /// `postgres_url`), which several nodes can share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageKind>,
    /// The PostgreSQL database, e.g. `postgres://custodia@db.internal:5432/custodia`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_url: Option<String>,
    /// Connections this node opens to PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_max_connections: Option<u32>,
    /// How live events reach other nodes: `local` (one node) or `nats` (with `nats_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<FanoutKind>,
    /// The NATS server, e.g. `nats://nats.internal:4222`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_url: Option<String>,
    /// The subject prefix the nodes of one deployment share on NATS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_subject_prefix: Option<String>,
    /// A CA certificate (PEM file) NATS's TLS certificate chains to, if not a system root;
    /// setting it requires TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_ca_cert: Option<PathBuf>,
    /// A Redis server every node shares for send limits, e.g.
    /// `redis://redis.internal:6379` (unset: each node limits on its own). When it does not
    /// answer, each node limits on its own and `/readyz` says the limits are degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

/// Where data is stored, validated.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// The embedded SQLite file in the data directory.
    Sqlite,
    /// A PostgreSQL database shared by the nodes.
    Postgres(custodia_store_postgres::PgOptions),
}

/// Where the server's certificate comes from, validated.
#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// The operator's PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated in the data directory by a local CA kept in `ca_dir` (default: beside
    /// the data directory).
    Generated {
        /// The CA's directory, if configured.
        ca_dir: Option<PathBuf>,
    },
}

/// How live events reach other nodes, validated.
#[derive(Debug, Clone)]
pub enum FanoutConfig {
    /// Only this process.
    Local,
    /// Through NATS.
    Nats(custodia_fanout_nats::NatsOptions),
}

/// One witness, as configured.
#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWitness {
    /// Its submission URL prefix, e.g. `https://witness.example:8445`.
    pub url: String,
    /// Its verifier key (`<name>+<key id>+<base64 key>`, type 0x04).
    pub key: String,
    /// The CA certificate (PEM file) its TLS listener chains to.
    pub ca_cert: PathBuf,
}

/// One witness, validated.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// Submission URL prefix.
    pub url: String,
    /// Its cosigner verifier key.
    pub key: custodia_tlog::NoteVerifier,
    /// The CA certificate of its listener.
    pub ca_cert: PathBuf,
}

impl RawConfig {
    /// Layers the TOML file (if any), the environment and `flags` over the defaults.
    pub fn load(file: Option<&Path>, flags: RawConfig) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(f) = file {
            if !f.exists() {
                bail!("config file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig
            .merge(Env::prefixed("CUSTODIA_").split("__").only(config_keys()))
            .merge(Serialized::defaults(flags));
        fig.extract().context("reading configuration")
    }

    /// The effective configuration as `load` reads it, one `key = value` line per setting
    /// with where its value came from (a flag, a `CUSTODIA_*` variable, the file, or the
    /// default); credentials in URLs are hidden. For `custodia serve --print-config`.
    pub fn describe(file: Option<&Path>, flags: RawConfig) -> anyhow::Result<String> {
        let merged = Self::load(file, flags.clone())?;
        let table = |c: &RawConfig| -> anyhow::Result<toml::Table> {
            toml::Table::try_from(c).context("showing the configuration")
        };
        let (effective, defaults, given) =
            (table(&merged)?, table(&Self::defaults())?, table(&flags)?);
        let in_file = match file {
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .parse::<toml::Table>()
                .with_context(|| format!("{} is not TOML", f.display()))?,
            None => toml::Table::new(),
        };
        let mut out = String::new();
        for key in config_keys() {
            let env = format!("CUSTODIA_{}", key.to_ascii_uppercase());
            let (value, source) = match (effective.get(*key), defaults.get(*key)) {
                (Some(v), _) => (
                    v,
                    if given.contains_key(*key) {
                        "command-line flag".to_owned()
                    } else if std::env::var_os(&env).is_some() {
                        format!("environment {env}")
                    } else if in_file.contains_key(*key) {
                        format!(
                            "file {}",
                            file.map(Path::display)
                                .map(|d| d.to_string())
                                .unwrap_or_default()
                        )
                    } else {
                        "default".to_owned()
                    },
                ),
                (None, Some(d)) => (d, "default".to_owned()),
                (None, None) => {
                    out.push_str(&format!("# {key} is unset (see custodia.example.toml)\n"));
                    continue;
                }
            };
            let mut shown = toml::Value::to_string(value);
            if key.ends_with("_url") {
                shown = hide_credentials(&shown);
            }
            if ["passphrase", "password", "secret"]
                .iter()
                .any(|s| key.contains(s))
                || key.ends_with("_pin")
                || key.ends_with("_token")
            {
                shown = "\"***\"".into();
            }
            out.push_str(&format!("{key} = {shown}    # {source}\n"));
        }
        Ok(out)
    }

    /// Every default, in one place: what each unset setting means. The tunables of the
    /// service, governance and the edge take their values from those crates' `Default`s,
    /// so each number is written once; [`Self::validate`] fills unset settings from here,
    /// and the example configuration (`custodia.example.toml`) shows them.
    pub fn defaults() -> RawConfig {
        let service = ServiceConfig::default();
        let governance = custodia_governance::GovernanceConfig::default();
        let edge = custodia_api::EdgeLimits::default();
        RawConfig {
            data_dir: Some(PathBuf::from("custodia-data")),
            // Unset: generated, by a CA kept beside the data directory.
            tls_cert: None,
            tls_key: None,
            tls_ca_dir: None,
            listen: Some("127.0.0.1:8443".into()),
            audit_listen: Some("127.0.0.1:8444".into()),
            staff_listen: Some("127.0.0.1:8446".into()),
            max_connections: Some(edge.max_connections),
            max_connections_per_address: Some(edge.max_connections_per_address),
            max_handshakes_per_address: Some(edge.max_handshakes_per_address),
            header_timeout_secs: Some(edge.header_timeout.as_secs()),
            shutdown_grace_secs: Some(edge.shutdown_grace.as_secs()),
            staff_session_minutes: Some(governance.staff_session_ttl.as_secs() / 60),
            staff_decide_after_hours: Some(governance.new_role_decides_after.as_secs() / 3600),
            verified_agency_domains: Some(governance.verified_agency_domains.clone()),
            retention_days: None,
            // Unset: the auditor listener's scheme-less URL prefix (c2sp.org/tlog-tiles),
            // or the name of the log key a data directory already holds.
            log_origin: None,
            epoch: Some(match service.epoch {
                EpochScheme::Day => EpochKind::Day,
                _ => EpochKind::Month,
            }),
            keyring_passphrase: None,
            pkcs11_module: None,
            pkcs11_token_label: None,
            pkcs11_pin: None,
            pkcs11_pin_file: None,
            pkcs11_key_label: Some("custodia-kek".into()),
            dek_cache_capacity: Some(10_000),
            dek_cache_max_age_secs: Some(300),
            kek_rewrap_per_sec: Some(1000),
            max_group_members: Some(service.max_group_members),
            session_ttl_hours: Some(service.session_ttl.as_secs() / 3600),
            login_attempts_per_account: Some(service.login_per_account.burst),
            login_attempts_per_account_total: Some(service.login_per_account_total.burst),
            signups_per_address_per_hour: Some(service.signups_per_address.burst),
            login_attempts_per_address: Some(service.login_per_address.burst),
            sends_per_minute: Some(service.sends_per_account.burst),
            new_account_sends_per_minute: Some(service.sends_new_account.burst),
            first_contact_sends_per_hour: Some(service.sends_first_contact.burst),
            pdq_max_distance: Some(service.pdq_max_distance),
            pdq_min_quality: Some(service.pdq_min_quality),
            normal_priority_lists: Some(service.normal_priority_lists.clone()),
            max_attachment_bytes: Some(service.max_attachment_bytes),
            text_rules: None,
            log_format: Some(LogFormat::Text),
            witnesses: None,
            // Unset: every configured witness.
            witness_quorum: None,
            storage: Some(StorageKind::Sqlite),
            postgres_url: None,
            postgres_max_connections: Some(16),
            fanout: Some(FanoutKind::Local),
            nats_url: None,
            nats_subject_prefix: Some("custodia".into()),
            nats_ca_cert: None,
            redis_url: None,
        }
    }

    /// These settings over [`Self::defaults`]: every setting that has a default is set.
    fn over_defaults(self) -> anyhow::Result<RawConfig> {
        Figment::from(Serialized::defaults(Self::defaults()))
            .merge(Serialized::defaults(self))
            .extract()
            .context("filling in defaults")
    }

    /// Checks every setting, unset ones taking their [`Self::defaults`].
    pub fn validate(self) -> anyhow::Result<Config> {
        let s = self.over_defaults()?;
        let listen: SocketAddr = given(s.listen, "listen")?
            .parse()
            .context("listen must be an address like 127.0.0.1:8443")?;
        let audit_listen: SocketAddr = given(s.audit_listen, "audit_listen")?
            .parse()
            .context("audit_listen must be an address like 127.0.0.1:8444")?;
        let staff_listen: SocketAddr = given(s.staff_listen, "staff_listen")?
            .parse()
            .context("staff_listen must be an address like 127.0.0.1:8446")?;
        let staff_minutes = given(s.staff_session_minutes, "staff_session_minutes")?;
        if !(1..=24 * 60).contains(&staff_minutes) {
            bail!("staff_session_minutes must be between 1 and 1440");
        }
        let defaults = custodia_api::EdgeLimits::default();
        let edge = custodia_api::EdgeLimits {
            max_connections: match given(s.max_connections, "max_connections")? {
                0 => bail!("max_connections must be at least 1"),
                n => n,
            },
            max_connections_per_address: match given(
                s.max_connections_per_address,
                "max_connections_per_address",
            )? {
                0 => bail!("max_connections_per_address must be at least 1"),
                n => n,
            },
            max_handshakes_per_address: match given(
                s.max_handshakes_per_address,
                "max_handshakes_per_address",
            )? {
                0 => bail!("max_handshakes_per_address must be at least 1"),
                n => n,
            },
            header_timeout: match given(s.header_timeout_secs, "header_timeout_secs")? {
                secs @ 1..=3600 => Duration::from_secs(secs),
                _ => bail!("header_timeout_secs must be between 1 and 3600"),
            },
            shutdown_grace: match given(s.shutdown_grace_secs, "shutdown_grace_secs")? {
                secs @ 1..=600 => Duration::from_secs(secs),
                _ => bail!("shutdown_grace_secs must be between 1 and 600"),
            },
            ..defaults
        };
        let decide_after_hours = given(s.staff_decide_after_hours, "staff_decide_after_hours")?;
        let verified_agency_domains = given(s.verified_agency_domains, "verified_agency_domains")?;
        if let Some(d) = verified_agency_domains.iter().find(|d| {
            let d = d.trim().trim_start_matches('.');
            !d.contains('.')
                || d.chars()
                    .any(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        }) {
            bail!("verified_agency_domains: {d:?} is not a domain name such as met.police.uk");
        }
        if decide_after_hours > 24 * 365 {
            bail!("staff_decide_after_hours must be between 0 and 8760");
        }
        let retention = match s.retention_days {
            None => None,
            Some(0) => bail!(
                "retention_days must be at least 1 (leave it out to keep messages without end)"
            ),
            Some(d) => Some(Duration::from_secs(u64::from(d) * 86_400)),
        };
        let log_origin = s.log_origin;
        if let Some(o) = &log_origin
            && (o.is_empty() || o.chars().any(|c| c.is_whitespace() || c == '+'))
        {
            bail!(
                "log_origin must be non-empty, without spaces or '+', e.g. example.org/custodia/audit"
            );
        }
        let epoch = match given(s.epoch, "epoch")? {
            EpochKind::Month => EpochScheme::Month,
            EpochKind::Day => EpochScheme::Day,
        };
        let capacity = NonZeroUsize::new(given(s.dek_cache_capacity, "dek_cache_capacity")?)
            .context("dek_cache_capacity must be at least 1")?;
        let max_age =
            Duration::from_secs(given(s.dek_cache_max_age_secs, "dek_cache_max_age_secs")?);
        let kek_rewrap_per_sec = given(s.kek_rewrap_per_sec, "kek_rewrap_per_sec")?;
        if kek_rewrap_per_sec == 0 {
            bail!("kek_rewrap_per_sec must be at least 1");
        }
        let max_group_members = given(s.max_group_members, "max_group_members")?;
        if !(2..=100_000).contains(&max_group_members) {
            bail!("max_group_members must be between 2 and 100000");
        }
        let ttl_hours = given(s.session_ttl_hours, "session_ttl_hours")?;
        if ttl_hours == 0 {
            bail!("session_ttl_hours must be at least 1");
        }
        let json_logs = s.log_format == Some(LogFormat::Json);
        let five_minutes = Duration::from_secs(300);
        let per = |v: Option<u32>, name: &str, per: Duration| match given(v, name)? {
            0 => Err(anyhow::anyhow!("{name} must be at least 1")),
            burst => Ok(RateLimit { burst, per }),
        };
        let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
        let login_per_account = per(
            s.login_attempts_per_account,
            "login_attempts_per_account",
            five_minutes,
        )?;
        let login_per_account_total = per(
            s.login_attempts_per_account_total,
            "login_attempts_per_account_total",
            five_minutes,
        )?;
        let login_per_address = per(
            s.login_attempts_per_address,
            "login_attempts_per_address",
            five_minutes,
        )?;
        let signups_per_address = per(
            s.signups_per_address_per_hour,
            "signups_per_address_per_hour",
            hour,
        )?;
        let sends_per_account = per(s.sends_per_minute, "sends_per_minute", minute)?;
        let sends_new_account = per(
            s.new_account_sends_per_minute,
            "new_account_sends_per_minute",
            minute,
        )?;
        let sends_first_contact = per(
            s.first_contact_sends_per_hour,
            "first_contact_sends_per_hour",
            hour,
        )?;
        let witnesses = s
            .witnesses
            .unwrap_or_default()
            .into_iter()
            .map(|w| {
                let key = custodia_tlog::NoteVerifier::parse(&w.key)
                    .ok()
                    .filter(|k| k.kind() == custodia_tlog::KeyKind::CosignatureV1)
                    .with_context(|| {
                        format!(
                            "witness {}: key must be a witness verifier key as `custodia witness` prints it",
                            w.url
                        )
                    })?;
                if !w.url.starts_with("https://") {
                    bail!("witness url must be an https:// URL, not {:?}", w.url);
                }
                Ok(WitnessConfig {
                    url: w.url,
                    key,
                    ca_cert: w.ca_cert,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let witness_quorum = s.witness_quorum.unwrap_or(witnesses.len());
        if witness_quorum > witnesses.len() {
            bail!(
                "witness_quorum is {witness_quorum} but only {} witnesses are configured",
                witnesses.len()
            );
        }
        let text_rules = match &s.text_rules {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading text_rules {}", path.display()))?;
                let rules = custodia_service::TextRules::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Some(std::sync::Arc::new(rules))
            }
            None => None,
        };
        let storage = match (given(s.storage, "storage")?, s.postgres_url) {
            (StorageKind::Sqlite, None) => StorageConfig::Sqlite,
            (StorageKind::Sqlite, Some(_)) => {
                bail!("postgres_url is set but storage is \"sqlite\"; set storage = \"postgres\"")
            }
            (StorageKind::Postgres, Some(url)) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    bail!(
                        "postgres_url must be a postgres:// URL, e.g. postgres://custodia@db:5432/custodia"
                    );
                }
                StorageConfig::Postgres(custodia_store_postgres::PgOptions {
                    url,
                    max_connections: match given(
                        s.postgres_max_connections,
                        "postgres_max_connections",
                    )? {
                        n @ 8..=1000 => n,
                        _ => bail!("postgres_max_connections must be between 8 and 1000"),
                    },
                })
            }
            (StorageKind::Postgres, None) => bail!(
                "storage = \"postgres\" needs postgres_url, e.g. postgres://custodia@db:5432/custodia"
            ),
        };
        let fanout = match (given(s.fanout, "fanout")?, s.nats_url) {
            (FanoutKind::Local, None) => FanoutConfig::Local,
            (FanoutKind::Local, Some(_)) => {
                bail!("nats_url is set but fanout is \"local\"; set fanout = \"nats\"")
            }
            (FanoutKind::Nats, Some(url)) => {
                if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                    bail!("nats_url must be a nats:// or tls:// URL, e.g. nats://nats:4222");
                }
                if let Some(ca) = &s.nats_ca_cert
                    && !ca.is_file()
                {
                    bail!("nats_ca_cert {} is not a readable file", ca.display());
                }
                FanoutConfig::Nats(custodia_fanout_nats::NatsOptions {
                    url,
                    subject_prefix: given(s.nats_subject_prefix, "nats_subject_prefix")?,
                    ca_cert: s.nats_ca_cert,
                })
            }
            (FanoutKind::Nats, None) => {
                bail!("fanout = \"nats\" needs nats_url, e.g. nats://nats:4222")
            }
        };
        if matches!(storage, StorageConfig::Sqlite) && matches!(fanout, FanoutConfig::Nats(_)) {
            bail!(
                "fanout = \"nats\" connects several nodes, which must share one database: set storage = \"postgres\""
            );
        }
        if matches!(&s.keyring_passphrase, Some(p) if p.is_empty()) {
            bail!("keyring_passphrase is set but empty; unset it or give a passphrase");
        }
        let pkcs11 = match s.pkcs11_module {
            None => None,
            Some(module) => {
                let token = s.pkcs11_token_label.filter(|t| !t.is_empty()).context(
                    "pkcs11_module is set: set pkcs11_token_label to the token holding the KEKs",
                )?;
                let pin = match (s.pkcs11_pin, s.pkcs11_pin_file) {
                    (Some(_), Some(_)) => {
                        bail!("set pkcs11_pin or pkcs11_pin_file, not both")
                    }
                    (Some(p), None) => p,
                    (None, Some(f)) => std::fs::read_to_string(&f)
                        .with_context(|| format!("pkcs11_pin_file: reading {}", f.display()))?
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    (None, None) => bail!(
                        "pkcs11_module is set: give the token's PIN in pkcs11_pin_file or CUSTODIA_PKCS11_PIN"
                    ),
                };
                if s.keyring_passphrase.is_some() {
                    bail!(
                        "keyring_passphrase is for the keyring file; with pkcs11_module there is none"
                    );
                }
                Some(custodia_keys::Pkcs11Config {
                    module,
                    token,
                    pin: zeroize::Zeroizing::new(pin),
                    key_label: s.pkcs11_key_label.unwrap_or_else(|| "custodia-kek".into()),
                })
            }
        };
        let data_dir = given(s.data_dir, "data_dir")?;
        let tls = match (s.tls_cert, s.tls_key) {
            (Some(cert), Some(key)) => {
                for (name, f) in [("tls_cert", &cert), ("tls_key", &key)] {
                    if !f.is_file() {
                        bail!("{name} {} is not a readable file", f.display());
                    }
                }
                TlsConfig::Files { cert, key }
            }
            (None, None) => TlsConfig::Generated {
                ca_dir: s.tls_ca_dir,
            },
            _ => bail!("set tls_cert and tls_key together (a certificate chain and its key)"),
        };
        Ok(Config {
            data_dir,
            tls,
            listen,
            audit_listen,
            staff_listen,
            edge,
            governance: custodia_governance::GovernanceConfig {
                staff_session_ttl: Duration::from_secs(staff_minutes * 60),
                new_role_decides_after: Duration::from_secs(decide_after_hours * 3600),
                verified_agency_domains,
                retention,
                ..Default::default()
            },
            log_origin,
            keyring_passphrase: s.keyring_passphrase.map(KeyringPassphrase::new),
            pkcs11,
            dek_cache: CacheLimits { capacity, max_age },
            kek_rewrap_per_sec,
            service: ServiceConfig {
                epoch,
                max_group_members,
                session_ttl: Duration::from_secs(ttl_hours * 3600),
                login_per_account,
                login_per_account_total,
                login_per_address,
                signups_per_address,
                sends_per_account,
                sends_new_account,
                sends_first_contact,
                pdq_max_distance: match given(s.pdq_max_distance, "pdq_max_distance")? {
                    d @ 0..=31 => d,
                    _ => bail!("pdq_max_distance must be between 0 and 31"),
                },
                pdq_min_quality: match given(s.pdq_min_quality, "pdq_min_quality")? {
                    q @ 0..=100 => q,
                    _ => bail!("pdq_min_quality must be between 0 and 100"),
                },
                max_attachment_bytes: match given(s.max_attachment_bytes, "max_attachment_bytes")? {
                    0 => bail!("max_attachment_bytes must be at least 1"),
                    n => n,
                },
                normal_priority_lists: given(s.normal_priority_lists, "normal_priority_lists")?,
            },
            json_logs,
            witnesses,
            witness_quorum,
            text_rules,
            storage,
            fanout,
            redis_url: s.redis_url.filter(|u| !u.trim().is_empty()),
        })
    }
}

/// A setting that [`RawConfig::defaults`] gives a value (so it is set after
/// `over_defaults`).
fn given<T>(value: Option<T>, name: &str) -> anyhow::Result<T> {
    value.with_context(|| format!("{name} has no value and no default"))
}

/// The environment keys `RawConfig` reads: its fields, as serde names them (derived
/// from the type, so a new setting is also an environment variable), so unrelated
/// `CUSTODIA_*` variables, like the client's `CUSTODIA_SERVER`, are not mistaken for
/// server settings.
pub fn config_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut fields = None;
        // The probe only records the field list serde asks for, then stops.
        let _ = RawConfig::deserialize(FieldProbe(&mut fields));
        fields.unwrap_or(&[])
    })
}

/// A deserializer that records the field names a struct's `Deserialize` asks for.
struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

/// What [`FieldProbe`] always answers once it has the names.
#[derive(Debug)]
struct Probed;

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names probed")
    }
}

impl std::error::Error for Probed {}

impl serde::de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = Probed;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        *self.0 = Some(fields);
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Validated configuration. Code after validation never re-checks it.
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where the TLS certificate comes from.
    pub tls: TlsConfig,
    /// Listener address.
    pub listen: SocketAddr,
    /// Auditor listener address.
    pub audit_listen: SocketAddr,
    /// Staff API listener address.
    pub staff_listen: SocketAddr,
    /// Limits every listener enforces on connections.
    pub edge: custodia_api::EdgeLimits,
    /// Governance tunables.
    pub governance: custodia_governance::GovernanceConfig,
    /// Audit log origin.
    pub log_origin: Option<String>,
    /// Keyring passphrase, if any.
    pub keyring_passphrase: Option<KeyringPassphrase>,
    /// The PKCS#11 token holding the KEKs, if they are not in the keyring file.
    pub pkcs11: Option<custodia_keys::Pkcs11Config>,
    /// DEK cache bounds.
    pub dek_cache: CacheLimits,
    /// Keys and secrets each node rewraps per second during a KEK rotation.
    pub kek_rewrap_per_sec: u32,
    /// Service tunables.
    pub service: ServiceConfig,
    /// JSON logs.
    pub json_logs: bool,
    /// Witnesses of the audit log.
    pub witnesses: Vec<WitnessConfig>,
    /// Cosignatures needed to keep a checkpoint.
    pub witness_quorum: usize,
    /// Compiled text rules, if configured.
    pub text_rules: Option<std::sync::Arc<custodia_service::TextRules>>,
    /// Where data is stored.
    pub storage: StorageConfig,
    /// How live events reach other nodes.
    pub fanout: FanoutConfig,
    /// The Redis every node shares for send limits, if any.
    pub redis_url: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("tls", &self.tls)
            .field("listen", &self.listen)
            .field("audit_listen", &self.audit_listen)
            .field("staff_listen", &self.staff_listen)
            .field("edge", &self.edge)
            .field("governance", &self.governance)
            .field("log_origin", &self.log_origin)
            .field(
                "keyring_passphrase",
                &self.keyring_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "pkcs11",
                &self
                    .pkcs11
                    .as_ref()
                    .map(|p| (&p.module, &p.token, &p.key_label, "pin <redacted>")),
            )
            .field("dek_cache", &self.dek_cache)
            .field("kek_rewrap_per_sec", &self.kek_rewrap_per_sec)
            .field("service", &self.service)
            .field("json_logs", &self.json_logs)
            .field("witnesses", &self.witnesses)
            .field("witness_quorum", &self.witness_quorum)
            .field("text_rules", &self.text_rules)
            .field("storage", &self.storage)
            .field("fanout", &self.fanout)
            .finish()
    }
}

/// `scheme://user:password@host…` shown as `scheme://user:***@host…`.
fn hide_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_debug_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("custodia.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nepoch = \"day\"\nkeyring_passphrase = \"hunter22\"\n",
        )
        .unwrap();
        let flags = RawConfig {
            listen: Some("127.0.0.1:9001".into()),
            ..RawConfig::default()
        };
        let cfg = RawConfig::load(Some(&file), flags)
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(cfg.listen.port(), 9001);
        assert_eq!(cfg.service.epoch, EpochScheme::Day);
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("hunter22") && shown.contains("redacted"),
            "{shown}"
        );
    }

    fn load_toml(text: &str) -> anyhow::Result<RawConfig> {
        load_toml_raw(text)
    }

    /// The error of loading `text` (RawConfig has no Debug: it may hold secrets).
    fn load_error(text: &str) -> String {
        match load_toml_raw(text) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn load_toml_raw(text: &str) -> anyhow::Result<RawConfig> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("custodia.toml");
        std::fs::write(&file, text).unwrap();
        RawConfig::load(Some(&file), RawConfig::default())
    }

    #[test]
    fn a_typo_or_an_unknown_value_is_refused_naming_it() {
        let err = load_error("listn = \"127.0.0.1:9000\"\n");
        assert!(
            err.contains("unknown field") && err.contains("listn"),
            "{err}"
        );
        let err = load_error(
            "[[witnesses]]\nurl = \"https://w\"\nkey = \"k\"\nca_cert = \"c\"\nquorum = 1\n",
        );
        assert!(err.contains("quorum"), "{err}");
        for (text, expected) in [
            ("epoch = \"weekly\"\n", "month"),
            ("storage = \"mysql\"\n", "postgres"),
            ("fanout = \"kafka\"\n", "nats"),
            ("log_format = \"xml\"\n", "json"),
        ] {
            let err = load_error(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
        let cfg = load_toml("epoch = \"day\"\nlog_format = \"json\"\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(cfg.service.epoch, EpochScheme::Day);
        assert!(cfg.json_logs);
    }

    #[test]
    fn every_setting_is_an_environment_key() {
        let keys = config_keys();
        for k in [
            "listen",
            "witnesses",
            "header_timeout_secs",
            "staff_decide_after_hours",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert_eq!(keys.len(), documented_fields().len(), "{keys:?}");
    }

    /// `RawConfig`'s fields with their doc comments, from this file's source.
    fn documented_fields() -> Vec<(String, Vec<String>)> {
        let src = include_str!("config.rs");
        let body = src
            .split_once("pub struct RawConfig {")
            .and_then(|(_, rest)| rest.split_once("\n}\n"))
            .map(|(body, _)| body)
            .expect("the RawConfig struct");
        let mut out = Vec::new();
        let mut docs = Vec::new();
        for line in body.lines().map(str::trim) {
            if let Some(doc) = line.strip_prefix("///") {
                docs.push(doc.trim().to_owned());
            } else if let Some(field) = line.strip_prefix("pub ") {
                let name = field.split(':').next().unwrap_or("").to_owned();
                out.push((name, std::mem::take(&mut docs)));
            }
        }
        out
    }

    /// The example configuration, generated from `RawConfig`'s doc comments and
    /// [`RawConfig::defaults`].
    fn example() -> String {
        let mut out = String::from(
            "# custodia configuration: every setting, with its documentation and its default,\n\
             # commented out. Generated from RawConfig in crates/custodia-server/src/config.rs\n\
             # by its tests; do not edit by hand. Each setting is also an environment\n\
             # variable: CUSTODIA_ and the name in capitals (e.g. CUSTODIA_LISTEN).\n",
        );
        let defaults = toml::Table::try_from(RawConfig::defaults()).unwrap();
        for (name, docs) in documented_fields() {
            out.push('\n');
            for d in docs {
                out.push_str(&format!("# {d}\n").replace("# \n", "#\n"));
            }
            match defaults.get(&name) {
                Some(value) => out.push_str(&format!("# {name} = {value}\n")),
                None => out.push_str(&format!("# {name} =\n")),
            }
        }
        out
    }

    #[test]
    fn the_example_config_is_generated_from_the_type() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../custodia.example.toml");
        let want = example();
        if std::env::var_os("CUSTODIA_UPDATE_EXAMPLE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "custodia.example.toml is stale: run `CUSTODIA_UPDATE_EXAMPLE=1 cargo test -p custodia-server --lib config` and commit it"
        );
        // Uncommented, its settings are a configuration that means the defaults.
        let uncommented: String = have
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            uncommented.contains("listen = \"127.0.0.1:8443\""),
            "{uncommented}"
        );
        let stated = load_toml(&uncommented).unwrap().validate().unwrap();
        assert_eq!(
            format!("{stated:?}"),
            format!("{:?}", RawConfig::default().validate().unwrap())
        );
    }

    /// Each default is written once: an empty configuration means exactly the tunables
    /// the service, governance and edge crates default to.
    #[test]
    fn defaults_live_in_one_place() {
        let empty = RawConfig::default().validate().unwrap();
        let defaults = RawConfig::defaults().validate().unwrap();
        assert_eq!(format!("{empty:?}"), format!("{defaults:?}"));
        assert_eq!(
            format!("{:?}", empty.service),
            format!("{:?}", ServiceConfig::default())
        );
        assert_eq!(
            format!("{:?}", empty.governance),
            format!("{:?}", custodia_governance::GovernanceConfig::default())
        );
        assert_eq!(
            format!("{:?}", empty.edge),
            format!("{:?}", custodia_api::EdgeLimits::default())
        );
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let bad = RawConfig {
            listen: Some("nowhere".into()),
            ..RawConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("listen"));
    }
}
