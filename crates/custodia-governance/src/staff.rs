//! Staff accounts, sign-in with password and TOTP, sessions, administration.

use std::fmt;
use std::net::IpAddr;

use custodia_audit::{Actor, AuditEvent, EventKind};
use custodia_core::{Password, SessionId, StaffId, StaffRole, Timestamp, Username};
use custodia_service::credentials::{
    hash_password, hash_token, new_password, new_token, verify_password,
};
use custodia_service::{ServiceError, ServiceResult};
use custodia_store::{StaffRecord, StaffSessionRecord, StoreError};
use zeroize::Zeroizing;

use crate::Governance;

const TOKEN_PREFIX: &str = "css_";
/// The name of the first admin, created when a deployment has no staff yet.
const FIRST_ADMIN: &str = "admin";

/// An authenticated staff session.
#[derive(Debug, Clone)]
pub struct StaffPrincipal {
    /// Who.
    pub staff_id: StaffId,
    /// Their sign-in name.
    pub username: Username,
    /// The role they act in.
    pub role: StaffRole,
    /// Which session.
    pub session_id: SessionId,
}

impl StaffPrincipal {
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            staff_id: self.staff_id.to_string(),
            role: self.role.as_str().into(),
        }
    }

    pub(crate) fn require(&self, roles: &[StaffRole], what: &'static str) -> ServiceResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(what))
        }
    }
}

/// A staff account as staff see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffView {
    /// Id.
    pub id: StaffId,
    /// Sign-in name.
    pub username: Username,
    /// Role.
    pub role: StaffRole,
    /// Whether it may sign in.
    pub active: bool,
}

/// A newly created staff account with its initial credentials, shown exactly once.
pub struct NewStaff {
    /// The account.
    pub staff: StaffView,
    /// Its initial password.
    pub password: Zeroizing<String>,
    /// Its TOTP secret as an `otpauth://` URI, for an authenticator app.
    pub totp_uri: Zeroizing<String>,
}

impl fmt::Debug for NewStaff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewStaff")
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// A fresh staff session: the bearer token is shown once and never stored.
pub struct NewStaffSession {
    /// The bearer token.
    pub token: Zeroizing<String>,
    /// Who signed in.
    pub staff: StaffPrincipal,
    /// When the session ends.
    pub expires_at: Timestamp,
}

impl fmt::Debug for NewStaffSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewStaffSession")
            .field("staff", &self.staff)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn view(r: &StaffRecord) -> StaffView {
    StaffView {
        id: r.id,
        username: r.username.clone(),
        role: r.role,
        active: r.active,
    }
}

impl Governance {
    /// Creates the first admin (`admin`) if the deployment has no staff yet, and returns
    /// its one-time credentials; `None` once any staff account exists.
    pub async fn bootstrap_admin(&self) -> ServiceResult<Option<NewStaff>> {
        if !self.inner.store.staff.all_staff().await?.is_empty() {
            return Ok(None);
        }
        let name = Username::parse(FIRST_ADMIN)?;
        match self.create(None, name, StaffRole::Admin).await {
            Ok(admin) => Ok(Some(admin)),
            // Another node bootstrapped at the same moment.
            Err(ServiceError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a staff account (admins only) with a random initial password and a new
    /// TOTP secret, returned once.
    pub async fn create_staff(
        &self,
        by: &StaffPrincipal,
        username: Username,
        role: StaffRole,
    ) -> ServiceResult<NewStaff> {
        by.require(&[StaffRole::Admin], "only an admin creates staff accounts")?;
        self.create(Some(by), username, role).await
    }

    async fn create(
        &self,
        by: Option<&StaffPrincipal>,
        username: Username,
        role: StaffRole,
    ) -> ServiceResult<NewStaff> {
        let inner = &self.inner;
        let id = StaffId::new();
        let password = new_password();
        let phc = {
            let _permit = self.hashing_permit().await?;
            hash_password(Password::parse(password.to_string())?).await?
        };
        let (totp, totp_uri) = inner.keys.new_totp(id, username.as_str())?;
        let record = StaffRecord {
            id,
            username: username.clone(),
            password_hash: phc,
            totp,
            role,
            active: true,
            created_at: inner.clock.now(),
        };
        if inner.store.staff.staff_by_name(&username).await?.is_some() {
            return Err(ServiceError::Conflict("that staff username is taken"));
        }
        self.log(
            EventKind::StaffChanged,
            by.map(StaffPrincipal::actor),
            vec![
                ("change".into(), "created".into()),
                ("staff".into(), id.to_string()),
                ("username".into(), username.as_str().into()),
                ("role".into(), role.as_str().into()),
            ],
        )
        .await?;
        match inner.store.staff.create_staff(record.clone()).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(ServiceError::Conflict("that staff username is taken"));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(staff = %id, role = role.as_str(), "staff account created");
        Ok(NewStaff {
            staff: view(&record),
            password,
            totp_uri,
        })
    }

    /// Every staff account (admins and auditors).
    pub async fn list_staff(&self, by: &StaffPrincipal) -> ServiceResult<Vec<StaffView>> {
        by.require(
            &[StaffRole::Admin, StaffRole::Auditor],
            "only admins and auditors list staff",
        )?;
        let all = self.inner.store.staff.all_staff().await?;
        Ok(all.iter().map(view).collect())
    }

    /// Changes another account's role or deactivates it (admins only; deactivation ends
    /// its sessions at once).
    pub async fn update_staff(
        &self,
        by: &StaffPrincipal,
        id: StaffId,
        role: StaffRole,
        active: bool,
    ) -> ServiceResult<StaffView> {
        by.require(&[StaffRole::Admin], "only an admin changes staff accounts")?;
        if id == by.staff_id {
            return Err(ServiceError::Rejected(
                "an admin cannot change their own account; ask another admin",
            ));
        }
        let store = &self.inner.store.staff;
        let before = store
            .staff_by_id(id)
            .await?
            .ok_or(ServiceError::NotFound("staff account"))?;
        self.log(
            EventKind::StaffChanged,
            Some(by.actor()),
            vec![
                ("change".into(), "updated".into()),
                ("staff".into(), id.to_string()),
                ("role".into(), role.as_str().into()),
                ("active".into(), active.to_string()),
                ("previous_role".into(), before.role.as_str().into()),
            ],
        )
        .await?;
        if !store.update_staff(id, role, active).await? {
            return Err(ServiceError::NotFound("staff account"));
        }
        Ok(StaffView {
            role,
            active,
            ..view(&before)
        })
    }

    /// Signs a staff member in with password and TOTP code. Rate limited per account and
    /// per address; a code is accepted once; the sign-in (or its refusal, for an existing
    /// account) is in the audit log before the session exists.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Password,
        code: &str,
        from: IpAddr,
    ) -> ServiceResult<NewStaffSession> {
        let inner = &self.inner;
        inner.signin_by_address.check(&from.to_string()).await?;
        inner
            .signin_by_account
            .check(&username.trim().to_ascii_lowercase())
            .await?;
        let staff = match Username::parse(username) {
            Ok(name) => inner.store.staff.staff_by_name(&name).await?,
            Err(_) => None,
        };
        let password_ok = {
            let _permit = self.hashing_permit().await?;
            verify_password(staff.as_ref().map(|s| s.password_hash.clone()), password).await?
        };
        let Some(staff) = staff else {
            return Err(ServiceError::BadStaffCredentials);
        };
        let now = inner.clock.now();
        let step = if password_ok && staff.active {
            inner.keys.totp_step(staff.id, &staff.totp, code, now)?
        } else {
            None
        };
        let fresh = match step {
            Some(step) => inner.store.staff.use_totp_step(staff.id, step).await?,
            None => false,
        };
        let actor = Actor {
            staff_id: staff.id.to_string(),
            role: staff.role.as_str().into(),
        };
        if !fresh {
            let why = match (password_ok, staff.active, step) {
                (_, false, _) => "inactive account",
                (false, _, _) => "wrong password",
                (true, true, None) => "wrong code",
                (true, true, Some(_)) => "code already used",
            };
            self.log(
                EventKind::StaffSignIn,
                Some(actor),
                vec![
                    ("outcome".into(), "refused".into()),
                    ("why".into(), why.into()),
                ],
            )
            .await?;
            tracing::info!(staff = %staff.id, why, "staff sign-in refused");
            return Err(ServiceError::BadStaffCredentials);
        }
        let (token, token_hash) = new_token(TOKEN_PREFIX);
        let session = StaffSessionRecord {
            id: SessionId::new(),
            staff_id: staff.id,
            token_hash,
            created_at: now,
            expires_at: now.plus(inner.config.staff_session_ttl),
        };
        self.log(
            EventKind::StaffSignIn,
            Some(actor),
            vec![
                ("outcome".into(), "signed in".into()),
                ("session".into(), session.id.to_string()),
            ],
        )
        .await?;
        inner
            .store
            .staff
            .create_staff_session(session.clone())
            .await?;
        tracing::info!(staff = %staff.id, session = %session.id, "staff signed in");
        Ok(NewStaffSession {
            token,
            expires_at: session.expires_at,
            staff: StaffPrincipal {
                staff_id: staff.id,
                username: staff.username,
                role: staff.role,
                session_id: session.id,
            },
        })
    }

    /// Resolves a staff bearer token; the account must still be active.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<StaffPrincipal> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(ServiceError::Unauthenticated);
        }
        let store = &self.inner.store.staff;
        let session = store
            .staff_session_by_token(&hash_token(token))
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if session.expires_at <= self.inner.clock.now() {
            return Err(ServiceError::Unauthenticated);
        }
        let staff = store
            .staff_by_id(session.staff_id)
            .await?
            .filter(|s| s.active)
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(StaffPrincipal {
            staff_id: staff.id,
            username: staff.username,
            role: staff.role,
            session_id: session.id,
        })
    }

    /// Ends the caller's session.
    pub async fn sign_out(&self, who: &StaffPrincipal) -> ServiceResult<()> {
        self.inner
            .store
            .staff
            .delete_staff_session(who.session_id)
            .await?;
        Ok(())
    }

    /// Appends a staff event (no case, no subjects) to the audit log.
    async fn log(
        &self,
        kind: EventKind,
        actor: Option<Actor>,
        scope: Vec<(String, String)>,
    ) -> ServiceResult<()> {
        self.append(AuditEvent {
            kind,
            time: self.inner.clock.now(),
            actor,
            reason: None,
            case: None,
            subjects: Vec::new(),
            scope,
        })
        .await
        .map(drop)
    }

    async fn hashing_permit(&self) -> ServiceResult<tokio::sync::SemaphorePermit<'_>> {
        self.inner
            .hashing
            .acquire()
            .await
            .map_err(|_| ServiceError::Unavailable("shutting down".into()))
    }
}
