//! TLS certificates an operator can live with.
//!
//! - **Operator-supplied**: `tls_cert` and `tls_key` name PEM files; they are read at start
//!   and again on SIGHUP ([`Certificates::reload`]), without dropping a connection.
//! - **Generated** (the default): a local CA, created at the first start in its own
//!   directory beside the data directory (`<data_dir>-ca`, or `tls_ca_dir`), never inside
//!   it, so copying a data directory to another node copies no CA key. The CA issues the
//!   server certificate (397 days, key usage digitalSignature, extended key usage
//!   serverAuth) into `DATA_DIR/tls/`, and renews it 30 days before it expires while the
//!   CA key is at hand. Other nodes get their own certificates with `custodia admin tls
//!   issue`; a node without the CA key warns as its certificate nears expiry.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use custodia_api::ServerCert;
use custodia_core::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::datadir::write_new;

/// Days a generated server certificate is valid (at most 398, what browsers accept).
pub const SERVER_CERT_DAYS: i64 = 397;
/// Days the generated CA is valid.
pub const CA_DAYS: i64 = 10 * 365;
/// A generated server certificate is renewed this many days before it expires.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// The names a generated server certificate holds unless told others.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A directory holding a CA: `ca.pem` (public) and `ca.key` (secret, mode 0600).
#[derive(Debug, Clone)]
pub struct CaDir(pub PathBuf);

impl CaDir {
    /// The CA's certificate.
    pub fn cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }

    fn key(&self) -> PathBuf {
        self.0.join("ca.key")
    }

    /// Whether the CA's key is here.
    pub fn exists(&self) -> bool {
        self.key().is_file()
    }

    /// Creates a new CA here (the directory must not hold one).
    pub fn create(&self, now: OffsetDateTime) -> anyhow::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.0)
            .with_context(|| format!("creating {}", self.0.display()))?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "custodia local CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = now - Duration::hours(1);
        ca.not_after = now + Duration::days(CA_DAYS);
        let key = KeyPair::generate()?;
        let cert = ca.self_signed(&key)?;
        write_new(&self.key(), key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&self.cert(), cert.pem().as_bytes(), 0o644)?;
        Ok(())
    }

    /// A new server certificate for `names` (DNS names or IP addresses) and its key, as
    /// PEM, valid from an hour before `now` for [`SERVER_CERT_DAYS`].
    pub fn issue(&self, names: &[String], now: OffsetDateTime) -> anyhow::Result<(String, String)> {
        let key_pem = zeroize::Zeroizing::new(
            fs::read_to_string(self.key())
                .with_context(|| format!("reading the CA key {}", self.key().display()))?,
        );
        let ca_pem = fs::read_to_string(self.cert())
            .with_context(|| format!("reading {}", self.cert().display()))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&key_pem)?)
            .context("the CA certificate and key")?;
        let mut leaf = CertificateParams::new(names.to_vec())?;
        leaf.distinguished_name
            .push(DnType::CommonName, "custodia server");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = now - Duration::hours(1);
        leaf.not_after = now + Duration::days(SERVER_CERT_DAYS);
        let leaf_key = KeyPair::generate()?;
        let cert = leaf.signed_by(&leaf_key, &issuer)?;
        Ok((cert.pem(), leaf_key.serialize_pem()))
    }

    /// Issues a server certificate for `names` into the data directory `node`
    /// (`tls/server.pem`, `tls/server.key`, and the CA's `tls/ca.pem` for its clients).
    pub fn issue_into(
        &self,
        node: &Path,
        names: &[String],
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let (cert, key) = self.issue(names, now)?;
        let tls = node.join("tls");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tls)
            .with_context(|| format!("creating {}", tls.display()))?;
        let ca = fs::read(self.cert())?;
        write_new(&tls.join("ca.pem"), &ca, 0o644)?;
        write_new(&tls.join("server.key"), key.as_bytes(), 0o600)?;
        // Written last: its presence means the set is complete.
        write_new(&tls.join("server.pem"), cert.as_bytes(), 0o644)?;
        Ok(())
    }
}

/// Where a server's certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// The operator's PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated: `tls/` in the data directory, issued by the CA in `ca`.
    Generated {
        /// The data directory.
        data_dir: PathBuf,
        /// The CA's directory (kept apart from the data directory).
        ca: CaDir,
    },
}

/// The certificate a server presents, and how it is kept current.
#[derive(Debug)]
pub struct Certificates {
    source: CertSource,
    current: Arc<ServerCert>,
}

impl Certificates {
    /// Loads the certificate (creating the CA and a server certificate on a first start,
    /// renewing a generated one that is due).
    pub fn open(source: CertSource, now: Timestamp) -> anyhow::Result<Self> {
        if let CertSource::Generated { data_dir, ca } = &source {
            prepare(data_dir, ca, now.to_datetime())?;
        }
        let (cert, key) = read(&source)?;
        let current = ServerCert::from_pem(&cert, &key)
            .map_err(|e| anyhow::anyhow!("TLS certificate: {e}"))?;
        Ok(Self { source, current })
    }

    /// The certificate every listener presents (replaced in place on a reload).
    pub fn server_cert(&self) -> Arc<ServerCert> {
        self.current.clone()
    }

    /// The CA certificate clients trust, for a generated certificate.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        match &self.source {
            CertSource::Generated { data_dir, .. } => Some(data_dir.join("tls/ca.pem")),
            CertSource::Files { .. } => None,
        }
    }

    /// Reads the certificate files again (SIGHUP: an operator replaced them, or `custodia
    /// admin tls issue` wrote new ones). On error the old certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let (cert, key) = read(&self.source)?;
        self.current
            .replace(&cert, &key)
            .map_err(|e| anyhow::anyhow!("TLS certificate: {e}"))
    }

    /// Renews a generated certificate that expires within [`RENEW_BEFORE_DAYS`] of `now`,
    /// if the CA key is at hand, and presents the new one; `Ok(true)` if it did.
    pub fn renew_if_due(&self, now: Timestamp) -> anyhow::Result<bool> {
        let CertSource::Generated { data_dir, ca } = &self.source else {
            return Ok(false);
        };
        let now = now.to_datetime();
        let expires = expiry(&data_dir.join("tls/server.pem"))?;
        if expires - now > Duration::days(RENEW_BEFORE_DAYS) {
            return Ok(false);
        }
        if !ca.exists() {
            tracing::warn!(
                expires = %expires,
                "the TLS certificate expires soon and the CA key is not here: issue a new \
                 one with `custodia admin tls issue` and send SIGHUP"
            );
            return Ok(false);
        }
        ca.issue_into(data_dir, &names_of(&data_dir.join("tls/server.pem"))?, now)?;
        self.reload()?;
        tracing::info!("renewed the TLS certificate");
        Ok(true)
    }
}

/// Makes a generated certificate ready: the CA (created on a first start), the server
/// certificate (issued if missing or due), and the CA key out of the data directory (a
/// data directory from before it was kept apart has it in `tls/ca.key`).
fn prepare(data_dir: &Path, ca: &CaDir, now: OffsetDateTime) -> anyhow::Result<()> {
    let old_key = data_dir.join("tls/ca.key");
    if old_key.is_file() && !ca.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&ca.0)?;
        fs::copy(data_dir.join("tls/ca.pem"), ca.cert())?;
        fs::rename(&old_key, ca.key()).with_context(|| {
            format!(
                "moving the CA key out of the data directory to {}",
                ca.0.display()
            )
        })?;
        tracing::warn!(ca = %ca.0.display(), "moved the CA key out of the data directory");
    } else if old_key.is_file() {
        fs::remove_file(&old_key)?;
    }
    let server = data_dir.join("tls/server.pem");
    if server.is_file() {
        return Ok(());
    }
    if !ca.exists() {
        ca.create(now)?;
    }
    let names: Vec<String> = DEFAULT_NAMES.iter().map(|n| (*n).to_owned()).collect();
    ca.issue_into(data_dir, &names, now)
}

fn read(source: &CertSource) -> anyhow::Result<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)> {
    let (cert, key) = match source {
        CertSource::Files { cert, key } => (cert.clone(), key.clone()),
        CertSource::Generated { data_dir, .. } => (
            data_dir.join("tls/server.pem"),
            data_dir.join("tls/server.key"),
        ),
    };
    let read = |p: &Path| fs::read(p).with_context(|| format!("reading {}", p.display()));
    Ok((read(&cert)?, zeroize::Zeroizing::new(read(&key)?)))
}

/// When the certificate in `pem` expires.
fn expiry(pem: &Path) -> anyhow::Result<OffsetDateTime> {
    let der = der_of(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", pem.display()))?;
    Ok(cert.validity().not_after.to_datetime())
}

/// The DNS names and IP addresses the certificate in `pem` is for.
fn names_of(pem: &Path) -> anyhow::Result<Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let der = der_of(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", pem.display()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b)?).to_string()),
                    16 => {
                        names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b)?).to_string())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names = DEFAULT_NAMES.iter().map(|n| (*n).to_owned()).collect();
    }
    Ok(names)
}

/// The DER of the first certificate in the PEM file `pem`.
fn der_of(pem: &Path) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(pem)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", pem.display()))?;
    Ok(der.to_vec())
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::ParsedExtension;

    const NOW: Timestamp = Timestamp::from_millis(1_795_435_200_000);

    fn at_days(days: u64) -> Timestamp {
        NOW.plus(std::time::Duration::from_secs(days * 86_400))
    }

    /// A data directory and its CA directory beside it, in a temporary directory.
    fn dirs() -> (tempfile::TempDir, PathBuf, CaDir) {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("tls")).unwrap();
        let ca = CaDir(tmp.path().join("data-ca"));
        (tmp, data, ca)
    }

    fn generated(data: &Path, ca: &CaDir) -> CertSource {
        CertSource::Generated {
            data_dir: data.to_owned(),
            ca: ca.clone(),
        }
    }

    /// Key usage, extended key usage and validity in days of a PEM certificate file.
    fn inspect(pem: &Path) -> (bool, bool, i64, Vec<String>) {
        let der = der_of(pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let (mut signs, mut server_auth) = (false, false);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => signs = ku.digital_signature(),
                ParsedExtension::ExtendedKeyUsage(eku) => server_auth = eku.server_auth,
                _ => {}
            }
        }
        let validity = cert.validity();
        let days =
            (validity.not_after.to_datetime() - validity.not_before.to_datetime()).whole_days();
        (signs, server_auth, days, names_of(pem).unwrap())
    }

    #[test]
    fn a_generated_certificate_is_for_servers_for_at_most_398_days_and_no_ca_key_is_in_the_data_directory()
     {
        let (_tmp, data, ca) = dirs();
        let certs = Certificates::open(generated(&data, &ca), NOW).unwrap();
        let (signs, server_auth, days, names) = inspect(&data.join("tls/server.pem"));
        assert!(signs, "key usage: digitalSignature");
        assert!(server_auth, "extended key usage: serverAuth");
        assert!((1..=398).contains(&days), "valid {days} days");
        assert_eq!(names, DEFAULT_NAMES);
        assert!(ca.exists(), "the CA key is kept in its own directory");
        let in_data: Vec<PathBuf> = walk(&data);
        assert!(
            in_data.iter().all(|p| !p.ends_with("ca.key")),
            "no CA key in the data directory: {in_data:?}"
        );
        assert_eq!(certs.ca_cert(), Some(data.join("tls/ca.pem")));
        // Not due yet: nothing renewed.
        assert!(!certs.renew_if_due(at_days(300)).unwrap());
    }

    #[test]
    fn a_certificate_is_renewed_before_it_expires_while_the_ca_key_is_at_hand() {
        let (_tmp, data, ca) = dirs();
        let certs = Certificates::open(generated(&data, &ca), NOW).unwrap();
        let before = expiry(&data.join("tls/server.pem")).unwrap();
        assert!(
            certs.renew_if_due(at_days(380)).unwrap(),
            "due 30 days before expiry"
        );
        let after = expiry(&data.join("tls/server.pem")).unwrap();
        assert!(after > before + Duration::days(300), "{before} -> {after}");

        // Without the CA key a node keeps its certificate and says so.
        fs::remove_file(ca.key()).unwrap();
        assert!(!certs.renew_if_due(at_days(380 + 380)).unwrap());
    }

    #[test]
    fn a_ca_key_left_in_an_old_data_directory_is_moved_out() {
        let (_tmp, data, ca) = dirs();
        // The old layout: the CA and its key in tls/.
        let old = CaDir(data.join("tls"));
        old.create(NOW.to_datetime()).unwrap();
        old.issue_into(&data, &["localhost".to_owned()], NOW.to_datetime())
            .unwrap();
        Certificates::open(generated(&data, &ca), NOW).unwrap();
        assert!(!data.join("tls/ca.key").exists());
        assert!(ca.exists());
        // And the moved CA still issues certificates the old CA certificate verifies.
        assert!(
            ca.issue(&["localhost".to_owned()], NOW.to_datetime())
                .is_ok()
        );
    }

    #[test]
    fn operator_files_are_reloaded_and_a_bad_pair_is_refused_keeping_the_old() {
        let (tmp, _data, ca) = dirs();
        ca.create(NOW.to_datetime()).unwrap();
        let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
        let write = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let (c, k) = ca.issue(&names, NOW.to_datetime()).unwrap();
            fs::write(&cert, c).unwrap();
            fs::write(&key, k).unwrap();
        };
        write(&["one.example"]);
        let certs = Certificates::open(
            CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(certs.ca_cert(), None);
        write(&["two.example"]);
        certs.reload().unwrap();
        // A certificate with another certificate's key is refused.
        let (other, _) = ca
            .issue(&["three.example".to_owned()], NOW.to_datetime())
            .unwrap();
        fs::write(&cert, other).unwrap();
        let err = certs.reload().unwrap_err().to_string();
        assert!(err.contains("do not belong together"), "{err}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}
