//! Staff accounts, sign-in with password and TOTP, sessions, administration.
//!
//! No single person reaches content: every staff change but a deactivation needs a second
//! person (another admin, or the auditor while there is one admin), a new member enrols
//! themselves with a code only the approver saw, and everyone who proposed or approved an
//! account's creation or role is kept as its sponsor, barred from approving its access
//! requests (see `requests`).

use std::fmt;
use std::net::IpAddr;

use custodia_audit::{Actor, AuditEvent, EventKind};
use custodia_core::{
    Password, SessionId, StaffChangeId, StaffChangeKind, StaffChangeStatus, StaffId, StaffRole,
    Timestamp, Username,
};
use custodia_service::credentials::{hash_password, hash_token, new_token, verify_password};
use custodia_service::{ServiceError, ServiceResult};
use custodia_store::{
    SealedTotp, StaffChangeRecord, StaffEffect, StaffEnrolment, StaffRecord, StaffSessionRecord,
    StoreError,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Governance, GovernanceError, GovernanceResult};

const TOKEN_PREFIX: &str = "css_";
const ENROLMENT_PREFIX: &str = "cse_";
/// The founding staff, created when a deployment has no staff yet.
const FIRST_ADMIN: &str = "admin";
const FIRST_AUDITOR: &str = "auditor";

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
    /// Whether its member has enrolled (chosen a password, received a TOTP secret).
    pub enrolled: bool,
}

/// A staff account waiting for its member to enrol, with the one-time enrolment code
/// (shown once, to the person who delivers it to the new member out of band; the code
/// itself is never stored).
pub struct NewStaff {
    /// The account.
    pub staff: StaffView,
    /// The one-time code with which the member sets their password and gets their TOTP
    /// secret.
    pub enrolment_code: Zeroizing<String>,
    /// When the code stops working.
    pub expires_at: Timestamp,
}

impl NewStaff {
    /// The unenrolled `record` with its enrolment `code`.
    fn of(record: &StaffRecord, code: Zeroizing<String>) -> Self {
        Self {
            staff: view(record),
            expires_at: record
                .enrolment
                .as_ref()
                .map_or(record.created_at, |e| e.expires_at),
            enrolment_code: code,
        }
    }
}

impl fmt::Debug for NewStaff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewStaff")
            .field("staff", &self.staff)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A member who has just enrolled: their TOTP secret, shown to them once.
pub struct Enrolled {
    /// The account.
    pub staff: StaffView,
    /// The TOTP secret as an `otpauth://` URI, for an authenticator app.
    pub totp_uri: Zeroizing<String>,
}

impl fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolled")
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// A proposed staff change as staff see it, with its state derived from the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffChangeView {
    /// The stored change.
    pub record: StaffChangeRecord,
    /// Its state now (expiry applied).
    pub status: StaffChangeStatus,
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
        enrolled: r.enrolment.is_none(),
    }
}

/// Adds `ids` to `list`, each once.
fn with_sponsors(mut list: Vec<StaffId>, ids: &[StaffId]) -> Vec<StaffId> {
    for id in ids {
        if !list.contains(id) {
            list.push(*id);
        }
    }
    list
}

impl Governance {
    /// Creates the deployment's two founding staff accounts if it has no staff yet — the
    /// first admin (`admin`) and the first auditor (`auditor`), each to be enrolled by a
    /// different person — and returns their enrolment codes; empty once any staff account
    /// exists. Staff changes need a second person: until there is a second admin, the
    /// auditor is that person.
    pub async fn bootstrap_founders(&self) -> ServiceResult<Vec<NewStaff>> {
        if !self.inner.store.staff.all_staff().await?.is_empty() {
            return Ok(Vec::new());
        }
        let founders: Vec<(StaffRecord, Zeroizing<String>)> = [
            (FIRST_ADMIN, StaffRole::Admin),
            (FIRST_AUDITOR, StaffRole::Auditor),
        ]
        .into_iter()
        .map(|(name, role)| Ok(self.unenrolled(Username::parse(name)?, role, Vec::new())))
        .collect::<ServiceResult<_>>()?;
        // One entry for the founding: both accounts, so the log shows that they were
        // created together at the first start and by nobody.
        let mut scope = vec![("change".to_owned(), "founded".to_owned())];
        for (record, _) in &founders {
            scope.push(("staff".into(), record.id.to_string()));
            scope.push(("username".into(), record.username.as_str().into()));
            scope.push(("role".into(), record.role.as_str().into()));
        }
        self.log(EventKind::StaffChanged, None, scope).await?;
        let mut out = Vec::new();
        for (record, code) in founders {
            match self.inner.store.staff.create_staff(record.clone()).await {
                Ok(()) => {}
                // Another node founded the deployment at the same moment.
                Err(StoreError::Conflict) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            }
            tracing::info!(staff = %record.id, role = record.role.as_str(), "founding staff account created");
            out.push(NewStaff::of(&record, code));
        }
        Ok(out)
    }

    /// The operator's recovery when no admin can act (the founding admin's code was lost,
    /// or the admins were deactivated): a new admin account (`admin-2`, `admin-3`, …), not
    /// yet enrolled, with a one-time code for the operator to hand over. Whoever holds the
    /// data directory holds the keys anyway (ARCHITECTURE.md); what this adds is that the
    /// recovery is in the log, as the operator's, before it takes effect.
    pub async fn operator_adds_admin(&self) -> ServiceResult<NewStaff> {
        let mut n = 2;
        let username = loop {
            let name = Username::parse(&format!("{FIRST_ADMIN}-{n}"))?;
            if self.inner.store.staff.staff_by_name(&name).await?.is_none() {
                break name;
            }
            n += 1;
        };
        let (record, code) = self.unenrolled(username, StaffRole::Admin, Vec::new());
        self.log(
            EventKind::StaffChanged,
            None,
            vec![
                ("change".into(), "operator-recovery".into()),
                ("staff".into(), record.id.to_string()),
                ("username".into(), record.username.as_str().into()),
                ("role".into(), record.role.as_str().into()),
            ],
        )
        .await?;
        self.inner.store.staff.create_staff(record.clone()).await?;
        tracing::warn!(staff = %record.id, "the operator added an admin account (recovery)");
        Ok(NewStaff::of(&record, code))
    }

    /// A new account that waits for its member's enrolment, and its enrolment code.
    fn unenrolled(
        &self,
        username: Username,
        role: StaffRole,
        sponsors: Vec<StaffId>,
    ) -> (StaffRecord, Zeroizing<String>) {
        let now = self.inner.clock.now();
        let (code, code_hash) = new_token(ENROLMENT_PREFIX);
        let record = StaffRecord {
            id: StaffId::at(now),
            username,
            password_hash: String::new(),
            totp: SealedTotp {
                kek_version: 0,
                bytes: Vec::new(),
            },
            role,
            active: true,
            created_at: now,
            role_since: now,
            sponsors,
            enrolment: Some(StaffEnrolment {
                code_hash,
                expires_at: now.plus(self.inner.config.enrolment_ttl),
            }),
        };
        (record, code)
    }

    /// Proposes a new staff account (admins only). It exists only once a second person
    /// approves ([`Governance::decide_staff_change`]); its member then enrols themselves.
    pub async fn propose_staff(
        &self,
        by: &StaffPrincipal,
        username: Username,
        role: StaffRole,
    ) -> ServiceResult<StaffChangeView> {
        by.require(&[StaffRole::Admin], "only an admin proposes staff accounts")?;
        if self
            .inner
            .store
            .staff
            .staff_by_name(&username)
            .await?
            .is_some()
        {
            return Err(ServiceError::Conflict("that staff username is taken"));
        }
        let record = self.change_record(
            by,
            StaffChangeKind::Create,
            StaffId::at(self.inner.clock.now()),
            username,
            role,
            true,
        );
        self.propose(by, record).await
    }

    /// Proposes a change of another account's role or activity (admins only). A
    /// deactivation that changes nothing else takes effect at once (it only takes access
    /// away, and a compromised account must be stoppable at once); anything else waits for
    /// a second person.
    pub async fn change_staff(
        &self,
        by: &StaffPrincipal,
        id: StaffId,
        role: StaffRole,
        active: bool,
    ) -> ServiceResult<StaffChangeView> {
        by.require(&[StaffRole::Admin], "only an admin changes staff accounts")?;
        if id == by.staff_id {
            return Err(ServiceError::Rejected(
                "an admin cannot change their own account; ask another admin",
            ));
        }
        let target = self
            .inner
            .store
            .staff
            .staff_by_id(id)
            .await?
            .ok_or(ServiceError::NotFound("staff account"))?;
        if target.role == role && target.active == active {
            return Err(ServiceError::Rejected(
                "that account already has this role and state",
            ));
        }
        let record = self.change_record(
            by,
            StaffChangeKind::Update,
            id,
            target.username.clone(),
            role,
            active,
        );
        if target.role == role && !active {
            let now = self.inner.clock.now();
            self.log(
                EventKind::StaffChanged,
                Some(by.actor()),
                vec![
                    ("change".into(), "deactivated".into()),
                    ("proposal".into(), record.id.to_string()),
                    ("staff".into(), id.to_string()),
                ],
            )
            .await?;
            let store = &self.inner.store.staff;
            store.create_staff_change(record.clone()).await?;
            let effect = StaffEffect::Update {
                id,
                role,
                active: false,
                sponsors: target.sponsors,
                role_since: target.role_since,
            };
            store
                .decide_staff_change(
                    record.id,
                    StaffChangeStatus::Approved,
                    None,
                    now,
                    Some(effect),
                )
                .await?;
            tracing::info!(staff = %id, by = %by.staff_id, "staff account deactivated");
            return self.staff_change(by, record.id).await;
        }
        self.propose(by, record).await
    }

    fn change_record(
        &self,
        by: &StaffPrincipal,
        kind: StaffChangeKind,
        staff_id: StaffId,
        username: Username,
        role: StaffRole,
        active: bool,
    ) -> StaffChangeRecord {
        StaffChangeRecord {
            id: StaffChangeId::at(self.inner.clock.now()),
            kind,
            staff_id,
            username,
            role,
            active,
            proposed_by: by.staff_id,
            proposed_at: self.inner.clock.now(),
            status: StaffChangeStatus::Pending,
            decided_by: None,
            decided_at: None,
        }
    }

    async fn propose(
        &self,
        by: &StaffPrincipal,
        record: StaffChangeRecord,
    ) -> ServiceResult<StaffChangeView> {
        self.log(
            EventKind::StaffChanged,
            Some(by.actor()),
            vec![
                ("change".into(), "proposed".into()),
                ("proposal".into(), record.id.to_string()),
                ("kind".into(), record.kind.as_str().into()),
                ("staff".into(), record.staff_id.to_string()),
                ("username".into(), record.username.as_str().into()),
                ("role".into(), record.role.as_str().into()),
                ("active".into(), record.active.to_string()),
            ],
        )
        .await?;
        self.inner
            .store
            .staff
            .create_staff_change(record.clone())
            .await?;
        Ok(self.change_view(record))
    }

    /// One proposed staff change (admins and auditors).
    pub async fn staff_change(
        &self,
        by: &StaffPrincipal,
        id: StaffChangeId,
    ) -> ServiceResult<StaffChangeView> {
        by.require(
            &[StaffRole::Admin, StaffRole::Auditor],
            "only admins and auditors see staff changes",
        )?;
        self.inner
            .store
            .staff
            .staff_change(id)
            .await?
            .map(|r| self.change_view(r))
            .ok_or(ServiceError::NotFound("staff change"))
    }

    /// Every proposed staff change, newest first (admins and auditors).
    pub async fn staff_changes(&self, by: &StaffPrincipal) -> ServiceResult<Vec<StaffChangeView>> {
        by.require(
            &[StaffRole::Admin, StaffRole::Auditor],
            "only admins and auditors see staff changes",
        )?;
        let all = self.inner.store.staff.staff_changes().await?;
        Ok(all.into_iter().map(|r| self.change_view(r)).collect())
    }

    /// A second person decides a proposed staff change: another admin — or, while the
    /// deployment has only one active admin, an auditor — never its proposer, never the
    /// account it changes. Approval applies it in the same commit; for a new account it
    /// returns the enrolment code, to this approver, who hands it to the new member (so
    /// the proposer never holds it).
    pub async fn decide_staff_change(
        &self,
        by: &StaffPrincipal,
        id: StaffChangeId,
        approve: bool,
    ) -> ServiceResult<(StaffChangeView, Option<NewStaff>)> {
        let store = &self.inner.store.staff;
        let change = self.staff_change(by, id).await?;
        let r = &change.record;
        if r.proposed_by == by.staff_id {
            return Err(ServiceError::Forbidden(
                "nobody decides their own proposal: a second person must",
            ));
        }
        if r.staff_id == by.staff_id {
            return Err(ServiceError::Forbidden(
                "nobody decides a change to their own account",
            ));
        }
        let admins = store
            .all_staff()
            .await?
            .iter()
            .filter(|s| s.active && s.role == StaffRole::Admin && s.enrolment.is_none())
            .count();
        let may = by.role == StaffRole::Admin || (by.role == StaffRole::Auditor && admins <= 1);
        if !may {
            return Err(ServiceError::Forbidden(
                "a second admin decides staff changes (an auditor, while there is one admin)",
            ));
        }
        if change.status != StaffChangeStatus::Pending {
            return Err(ServiceError::Rejected(
                "decisions are final: this change is no longer pending",
            ));
        }
        let now = self.inner.clock.now();
        let (effect, new) = match (approve, r.kind) {
            (false, _) => (None, None),
            (true, StaffChangeKind::Create) => {
                if store.staff_by_name(&r.username).await?.is_some() {
                    return Err(ServiceError::Conflict("that staff username is taken"));
                }
                let (mut record, code) =
                    self.unenrolled(r.username.clone(), r.role, vec![r.proposed_by, by.staff_id]);
                record.id = r.staff_id;
                let new = NewStaff::of(&record, code);
                (Some(StaffEffect::Create(record)), Some(new))
            }
            (true, _) => {
                let target = store
                    .staff_by_id(r.staff_id)
                    .await?
                    .ok_or(ServiceError::NotFound("staff account"))?;
                let role_changed = target.role != r.role;
                let effect = StaffEffect::Update {
                    id: target.id,
                    role: r.role,
                    active: r.active,
                    sponsors: if role_changed {
                        with_sponsors(target.sponsors, &[r.proposed_by, by.staff_id])
                    } else {
                        target.sponsors
                    },
                    role_since: if role_changed { now } else { target.role_since },
                };
                (Some(effect), None)
            }
        };
        let status = if approve {
            StaffChangeStatus::Approved
        } else {
            StaffChangeStatus::Denied
        };
        self.log(
            EventKind::StaffChanged,
            Some(by.actor()),
            vec![
                ("change".into(), status.as_str().into()),
                ("proposal".into(), r.id.to_string()),
                ("kind".into(), r.kind.as_str().into()),
                ("staff".into(), r.staff_id.to_string()),
                ("role".into(), r.role.as_str().into()),
                ("active".into(), r.active.to_string()),
            ],
        )
        .await?;
        match store
            .decide_staff_change(r.id, status, Some(by.staff_id), now, effect)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(ServiceError::Conflict(
                    "the change was decided meanwhile; reload it",
                ));
            }
            Err(StoreError::Conflict) => {
                return Err(ServiceError::Conflict(
                    "that staff username is taken, or the account is gone",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(proposal = %r.id, by = %by.staff_id, status = status.as_str(), "staff change decided");
        Ok((self.staff_change(by, id).await?, new))
    }

    fn change_view(&self, record: StaffChangeRecord) -> StaffChangeView {
        let now = self.inner.clock.now();
        let status = if record.status == StaffChangeStatus::Pending
            && now >= record.proposed_at.plus(self.inner.config.staff_change_ttl)
        {
            StaffChangeStatus::Expired
        } else {
            record.status
        };
        StaffChangeView { record, status }
    }

    /// A new member enrols with the code they were handed: sets their own password and
    /// receives their TOTP secret (nobody else ever sees either). The code works once and
    /// only until it expires; attempts count against the sign-in limits.
    pub async fn enrol(
        &self,
        username: &str,
        code: &str,
        password: Password,
        from: IpAddr,
    ) -> ServiceResult<Enrolled> {
        let inner = &self.inner;
        self.signin_attempt(username, from).await?;
        const REFUSED: &str =
            "that enrolment code is not valid for this account (wrong, used or expired)";
        let staff = match Username::parse(username) {
            Ok(name) => inner.store.staff.staff_by_name(&name).await?,
            Err(_) => None,
        };
        let now = inner.clock.now();
        let Some(staff) = staff.filter(|s| {
            s.active
                && s.enrolment.as_ref().is_some_and(|e| {
                    e.expires_at > now
                        && bool::from(e.code_hash.0.ct_eq(&hash_token(code.trim()).0))
                })
        }) else {
            return Err(ServiceError::Rejected(REFUSED));
        };
        let phc = hash_password(password).await?;
        let (totp, totp_uri) = inner.keys.new_totp(staff.id, staff.username.as_str())?;
        self.log(
            EventKind::StaffChanged,
            Some(Actor {
                staff_id: staff.id.to_string(),
                role: staff.role.as_str().into(),
            }),
            vec![("change".into(), "enrolled".into())],
        )
        .await?;
        if !inner
            .store
            .staff
            .set_staff_credentials(staff.id, Some(hash_token(code.trim())), phc, totp)
            .await?
        {
            return Err(ServiceError::Rejected(REFUSED));
        }
        tracing::info!(staff = %staff.id, "staff member enrolled");
        let mut enrolled = view(&staff);
        enrolled.enrolled = true;
        Ok(Enrolled {
            staff: enrolled,
            totp_uri,
        })
    }

    /// A signed-in member changes their own password (the current one is required).
    pub async fn change_password(
        &self,
        by: &StaffPrincipal,
        current: Password,
        new: Password,
    ) -> GovernanceResult<()> {
        let record = self.check_own_password(by, current).await?;
        let phc = hash_password(new).await?;
        self.log(
            EventKind::StaffChanged,
            Some(by.actor()),
            vec![("change".into(), "password changed".into())],
        )
        .await?;
        if !self
            .inner
            .store
            .staff
            .set_staff_credentials(by.staff_id, None, phc, record.totp)
            .await?
        {
            return Err(ServiceError::Unauthenticated.into());
        }
        Ok(())
    }

    /// A signed-in member replaces their own TOTP secret (the password is required); the
    /// new secret is returned once and the old one stops working at once.
    pub async fn reenrol_totp(
        &self,
        by: &StaffPrincipal,
        password: Password,
    ) -> GovernanceResult<Zeroizing<String>> {
        let record = self.check_own_password(by, password).await?;
        let (totp, uri) = self
            .inner
            .keys
            .new_totp(record.id, record.username.as_str())?;
        self.log(
            EventKind::StaffChanged,
            Some(by.actor()),
            vec![("change".into(), "totp re-enrolled".into())],
        )
        .await?;
        if !self
            .inner
            .store
            .staff
            .set_staff_credentials(by.staff_id, None, record.password_hash, totp)
            .await?
        {
            return Err(ServiceError::Unauthenticated.into());
        }
        Ok(uri)
    }

    async fn check_own_password(
        &self,
        by: &StaffPrincipal,
        password: Password,
    ) -> GovernanceResult<StaffRecord> {
        let record = self
            .inner
            .store
            .staff
            .staff_by_id(by.staff_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let ok = verify_password(Some(record.password_hash.clone()), password).await?;
        if !ok {
            return Err(GovernanceError::BadStaffCredentials);
        }
        Ok(record)
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

    /// Signs a staff member in with password and TOTP code. Rate limited per account and
    /// per address; a code is accepted once; the sign-in (or its refusal, for an existing
    /// account) is in the audit log before the session exists.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Password,
        code: &str,
        from: IpAddr,
    ) -> GovernanceResult<NewStaffSession> {
        let inner = &self.inner;
        self.signin_attempt(username, from).await?;
        let staff = match Username::parse(username) {
            Ok(name) => inner.store.staff.staff_by_name(&name).await?,
            Err(_) => None,
        };
        let password_ok = {
            let phc = staff
                .as_ref()
                .filter(|s| s.enrolment.is_none())
                .map(|s| s.password_hash.clone());
            verify_password(phc, password).await?
        };
        let Some(staff) = staff else {
            return Err(GovernanceError::BadStaffCredentials);
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
            return Err(GovernanceError::BadStaffCredentials);
        }
        let (token, token_hash) = new_token(TOKEN_PREFIX);
        let session = StaffSessionRecord {
            id: SessionId::at(now),
            staff_id: staff.id,
            token_hash,
            created_at: now,
            expires_at: now.plus(inner.config.staff_session_ttl),
        };
        let opened = async {
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
                .await
                .map_err(GovernanceError::from)
        }
        .await;
        if let Err(e) = opened {
            // Not signed in after all (the log or the store failed): the code is given
            // back, so the retry with it is not refused as a reused code.
            if let Some(step) = step
                && let Err(again) = inner.store.staff.unuse_totp_step(staff.id, step).await
            {
                tracing::warn!(error = %again, "could not give back the one-time code of a failed sign-in");
            }
            return Err(e);
        }
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
}
