//! Witnessing: `custodia witness` (a C2SP tlog-witness server an oversight body can run),
//! and [`HttpCosigner`], through which a log asks a witness to cosign.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::SystemClock;
use anyhow::Context;
use async_trait::async_trait;
use custodia_audit::{CosignError, Cosigner};
use custodia_sdk::{Client, Method};
use custodia_tlog::{AddCheckpoint, Hash, NoteSignature, NoteVerifier, SignedNote};
use custodia_witness::Witness;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::WitnessConfig;
use crate::datadir::DataDir;

/// What `custodia witness` needs.
#[derive(Debug, Clone)]
pub struct WitnessOptions {
    /// Its data directory: key, certificates, state.
    pub data_dir: PathBuf,
    /// Listener address.
    pub listen: SocketAddr,
    /// The witness's key name, e.g. `oversight.example/witness`.
    pub name: String,
    /// The verifier keys of the logs it witnesses.
    pub logs: Vec<NoteVerifier>,
}

/// A running witness.
pub struct RunningWitness {
    /// `https://…` submission prefix.
    pub url: String,
    /// Its verifier key, for the logs' configuration and for auditors.
    pub key: NoteVerifier,
    /// The CA certificate of its listener.
    pub ca_cert: PathBuf,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningWitness {
    /// A token that stops the witness when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the witness and waits for in-flight requests.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task
            .await
            .context("witness task")?
            .context("witness")?;
        Ok(())
    }
}

/// Creates or opens the witness's data directory, then listens.
pub async fn start_witness(opts: WitnessOptions) -> anyhow::Result<RunningWitness> {
    if opts.logs.is_empty() {
        anyhow::bail!("give at least one --log key: the verifier key of a log to witness");
    }
    let dir = DataDir::open(&opts.data_dir)?;
    let signer = dir.witness_signer(&opts.name)?;
    let certs = crate::certs::Certificates::open(
        crate::certs::CertSource::Generated {
            data_dir: dir.root.clone(),
            ca: crate::certs::CaDir(dir.default_ca_dir()),
        },
        custodia_core::Clock::now(&SystemClock),
    )?;
    let tls = custodia_api::tls13_server_config(certs.server_cert())
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?;
    let witness = Witness::open(
        signer,
        opts.logs,
        &dir.root.join("witness-state"),
        Arc::new(SystemClock),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verifier = witness.verifier();
    let tcp = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = tcp.local_addr()?;
    let listener = custodia_api::TlsListener::new(tcp, tls, custodia_api::EdgeLimits::default())?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(custodia_api::serve_witness(
        listener,
        Arc::new(witness),
        shutdown.clone(),
    ));
    Ok(RunningWitness {
        url: format!("https://{addr}"),
        key: verifier,
        ca_cert: dir.ca_cert(),
        shutdown,
        task,
    })
}

/// A witness reached over HTTPS.
pub struct HttpCosigner {
    client: Client,
    key: NoteVerifier,
}

impl HttpCosigner {
    /// A client for one configured witness.
    pub fn new(w: &WitnessConfig) -> anyhow::Result<Self> {
        let ca = std::fs::read(&w.ca_cert).with_context(|| {
            format!(
                "reading the CA certificate {} of witness {}",
                w.ca_cert.display(),
                w.url
            )
        })?;
        Ok(Self {
            client: Client::new(&w.url, &ca)?,
            key: w.key.clone(),
        })
    }
}

#[async_trait]
impl Cosigner for HttpCosigner {
    fn name(&self) -> &str {
        self.key.name()
    }

    async fn add_checkpoint(
        &self,
        old: u64,
        proof: Vec<Hash>,
        checkpoint: &str,
    ) -> Result<NoteSignature, CosignError> {
        let failed = |why: String| CosignError::Failed(why);
        let body = AddCheckpoint {
            old,
            proof,
            checkpoint: checkpoint.to_owned(),
        }
        .to_bytes();
        let (status, ctype, answer) = self
            .client
            .raw(Method::POST, "/add-checkpoint", "text/plain", body)
            .await
            .map_err(|e| failed(format!("unreachable: {e}")))?;
        let answer = String::from_utf8_lossy(&answer);
        match status {
            200 => {
                let text = SignedNote::parse(checkpoint.as_bytes())
                    .map_err(|e| failed(format!("the checkpoint: {e}")))?
                    .text;
                answer
                    .lines()
                    .filter_map(|l| NoteSignature::parse_line(l).ok())
                    .find(|sig| self.key.verifies(&text, sig))
                    .ok_or_else(|| {
                        failed("its answer holds no valid cosignature by its key".into())
                    })
            }
            409 if ctype.starts_with("text/x.tlog.size") => answer
                .trim_end_matches('\n')
                .parse()
                .map(CosignError::Conflict)
                .map_err(|_| failed("a 409 without a size".into()))
                .and_then(Err),
            _ => Err(failed(format!(
                "answered {status}: {}",
                answer.chars().take(200).collect::<String>()
            ))),
        }
    }
}
