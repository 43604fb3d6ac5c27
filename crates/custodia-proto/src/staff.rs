//! The wire format of the staff API (its own TLS listener, `staff_listen`).
//!
//! - `POST /v1/staff/sessions` — [`StaffSignIn`] → [`StaffSession`] (the token only here).
//! - `DELETE /v1/staff/sessions/current` — sign out.
//! - `GET /v1/staff/me` — [`StaffMember`].
//! - `GET /v1/staff/accounts` — `[StaffMember]` (admins, auditors).
//! - `POST /v1/staff/accounts` — [`CreateStaff`] → [`CreatedStaff`] (admins).
//! - `PATCH /v1/staff/accounts/{id}` — [`UpdateStaff`] → [`StaffMember`] (admins).
//!
//! Every call but sign-in carries `Authorization: Bearer <staff token>`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Sign-in with password and the current TOTP code.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffSignIn {
    /// Staff username.
    pub username: String,
    /// Password.
    pub password: String,
    /// The 6-digit code of the authenticator app.
    pub code: String,
}

impl std::fmt::Debug for StaffSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSignIn")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    /// Id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// `moderator`, `senior_moderator`, `legal_officer`, `auditor` or `admin`.
    pub role: String,
    /// Whether it may sign in.
    pub active: bool,
}

/// A new staff session; the token is shown only here.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffSession {
    /// Bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Who signed in.
    pub staff: StaffMember,
}

impl std::fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSession")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// A staff account to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateStaff {
    /// Username.
    pub username: String,
    /// Role.
    pub role: String,
}

/// A created staff account with its one-time credentials.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedStaff {
    /// The account.
    pub staff: StaffMember,
    /// Initial password.
    pub password: String,
    /// `otpauth://` URI of the TOTP secret, for an authenticator app.
    pub totp_uri: String,
}

impl std::fmt::Debug for CreatedStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedStaff")
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// A change to a staff account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateStaff {
    /// The new role.
    pub role: String,
    /// Whether it may sign in.
    pub active: bool,
}
