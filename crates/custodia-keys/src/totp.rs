//! Staff second factors (RFC 6238 TOTP: HMAC-SHA-1, 6 digits, 30-second steps, one step
//! of skew). The secret is created here, sealed under the current KEK and bound to the
//! staff id; it leaves the key service only once, as the `otpauth://` URI shown to the new
//! staff member, and is opened only here to check a code.

use custodia_core::{StaffId, Timestamp};
use custodia_store::SealedTotp;
use totp_rs::{Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::aead::SecretKey;
use crate::{KeyError, KeyService};

/// The issuer shown in authenticator apps.
const ISSUER: &str = "custodia";

impl KeyService {
    /// A fresh TOTP secret for `staff`: sealed for storage, and the `otpauth://` URI (with
    /// `account` as its label) to show once to the staff member.
    pub fn new_totp(
        &self,
        staff: StaffId,
        account: &str,
    ) -> Result<(SealedTotp, Zeroizing<String>), KeyError> {
        let secret = SecretKey::generate();
        let raw = &secret.expose()[..20];
        let uri = totp(raw, account)?
            .to_url()
            .map_err(|_| KeyError::Totp("the account name cannot be put in a TOTP URI"))?;
        let version = self.current_kek();
        let bytes = self
            .kek
            .seal(version, raw, &self.totp_aad(staff, version))?;
        Ok((
            SealedTotp {
                kek_version: version,
                bytes,
            },
            Zeroizing::new(uri),
        ))
    }

    /// The 30-second step whose code `code` is, within one step of `now`, or `None` if it
    /// matches none. The caller refuses steps already used (RFC 6238 §5.2).
    pub fn totp_step(
        &self,
        staff: StaffId,
        sealed: &SealedTotp,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<u64>, KeyError> {
        let raw = self.kek.open(
            sealed.kek_version,
            &sealed.bytes,
            &self.totp_aad(staff, sealed.kek_version),
        )?;
        let secs = u64::try_from(now.as_millis() / 1000).unwrap_or(0);
        Ok(totp(&raw, "staff")?.check(code.trim(), secs))
    }

    pub(crate) fn totp_aad(&self, staff: StaffId, kek_version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"custodia/totp/v1\0");
        aad.extend_from_slice(self.deployment.as_bytes());
        aad.extend_from_slice(staff.as_bytes());
        aad.extend_from_slice(&kek_version.to_be_bytes());
        aad
    }
}

fn totp(raw: &[u8], account: &str) -> Result<Totp, KeyError> {
    Builder::new()
        .with_secret(Secret::new(raw.to_vec().into_boxed_slice()))
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| KeyError::Totp("the TOTP parameters are not RFC 6238 compliant"))
}
