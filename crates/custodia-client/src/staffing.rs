//! Staffing a deployment over the staff API, the way people do it: the founding members
//! enrol with their codes, an admin proposes each account, a second person approves it and
//! passes the enrolment code on, the new member enrols and signs in. Used by the staff
//! benchmark and the end-to-end tests.

use anyhow::Context;
use custodia_sdk::Client;

/// A member's credentials after enrolling.
#[derive(Clone)]
pub struct StaffCredentials {
    /// Username.
    pub username: String,
    /// The password they chose.
    pub password: String,
    /// Their TOTP secret as an `otpauth://` URI.
    pub totp_uri: String,
}

impl std::fmt::Debug for StaffCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The code an authenticator app shows now for the secret in `otpauth_uri`.
pub fn totp_now(otpauth_uri: &str) -> anyhow::Result<String> {
    let totp = totp_rs::Totp::from_url(otpauth_uri).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(totp.generate(now).to_string())
}

/// Enrols `username` with `code`, choosing `password`.
pub async fn enrol(
    staff_api: &Client,
    username: &str,
    code: &str,
    password: &str,
) -> anyhow::Result<StaffCredentials> {
    let enrolled = staff_api
        .staff_enrol(username, code, password)
        .await
        .with_context(|| format!("enrolling {username}"))?;
    Ok(StaffCredentials {
        username: username.into(),
        password: password.into(),
        totp_uri: enrolled.totp_uri,
    })
}

/// Signs `creds` in on a fresh client of the staff API `staff_api` points at.
pub async fn sign_in(staff_api: &Client, creds: &StaffCredentials) -> anyhow::Result<Client> {
    let mut c = staff_api.at(staff_api.server())?;
    c.staff_sign_in(
        &creds.username,
        &creds.password,
        &totp_now(&creds.totp_uri)?,
    )
    .await
    .with_context(|| format!("signing in {}", creds.username))?;
    Ok(c)
}

/// A new account: `admin` proposes it, `approver` approves it, its member enrols with
/// `password`.
pub async fn add_staff(
    admin: &Client,
    approver: &Client,
    username: &str,
    role: &str,
    password: &str,
) -> anyhow::Result<StaffCredentials> {
    let proposal = admin.staff_create(username, role).await?;
    let decided = approver.staff_decide_change(proposal.id, true).await?;
    let code = decided
        .enrolment_code
        .context("an approved new account comes with its enrolment code")?;
    enrol(admin, username, &code, password).await
}
