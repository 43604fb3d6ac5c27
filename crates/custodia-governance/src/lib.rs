//! Governed access: who on the platform's staff may do what, and the record of it.
//!
//! Staff are principals apart from users. Each holds exactly one [`StaffRole`]; signs in
//! with a password and a TOTP code (each code works once); gets a short-lived session.
//! Every staff action — sign-ins (and refused ones), account and role changes — is
//! appended to the audit log *before* it takes effect: if the log cannot be written, the
//! action fails. The admin role manages staff and can read no content.
//!
//! Staff reach content only through a **case** (a member's report, or a legal request), a
//! **request** with a closed reason code and a narrow scope, **approval** by the people the
//! reason demands (frozen when the request is made; never the requester), and a **read**
//! that is in the audit log before anything is unwrapped.
//!
//! Layout:
//! - `staff` — staff accounts, sign-in, sessions, administration.
//! - `audit` — auditors read the full records beside the log's entries.
//! - `cases` — reports by members and legal cases.
//! - `policy` — who may ask and who must approve, by reason code.
//! - `requests` — access requests, decisions, grants, and audited reads.
//! - `rotation` — KEK rotation while serving: adopt, log, rewrap, finish.

mod audit;
mod cases;
mod disclosure;
mod legal;
mod policy;
mod requests;
mod retention;
mod rotation;
mod staff;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use custodia_audit::AuditLog;
use custodia_audit::{AuditEvent, Receipt};
use custodia_core::{Clock, KeyedRateLimiter, RateLimit, UserId};
use custodia_keys::KeyService;
use custodia_service::{ServiceError, ServiceResult, SharedLimit};
use custodia_store::Storage;

pub use cases::{CaseView, EvidenceView, MAX_COMMENT_CHARS, MAX_REPORTED, Report, ReportedMessage};
pub use disclosure::Package;
pub use legal::{
    HOLD_PERIOD, LegalDecision, LegalRequestView, MAX_DOCUMENT_BYTES, MAX_DOCUMENTS, MAX_TARGETS,
    NewDocument, NewLegalRequest, SUFFICIENT, UNTIL_LIFTED, sufficient,
};
pub use policy::Policy;
pub use requests::{GrantRead, MAX_GRANT_MESSAGES, NewRequest, RequestView};
pub use retention::RetentionRun;
pub use rotation::{KekStatus, RotationRound, usage_detail, version_in_use};
pub use staff::{Enrolled, NewStaff, NewStaffSession, StaffChangeView, StaffPrincipal, StaffView};

/// What a staff member's own credentials can fail with, beside the service's outcomes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GovernanceError {
    /// Wrong staff username, password or one-time code (deliberately not saying which),
    /// or a one-time code already used.
    #[error("wrong username, password or one-time code")]
    BadStaffCredentials,
    /// Any outcome the services share.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<custodia_store::StoreError> for GovernanceError {
    fn from(e: custodia_store::StoreError) -> Self {
        Self::Service(e.into())
    }
}

impl From<custodia_keys::KeyError> for GovernanceError {
    fn from(e: custodia_keys::KeyError) -> Self {
        Self::Service(e.into())
    }
}

impl From<custodia_core::ValidationError> for GovernanceError {
    fn from(e: custodia_core::ValidationError) -> Self {
        Self::Service(e.into())
    }
}

/// Result of the staff credential calls.
pub type GovernanceResult<T> = Result<T, GovernanceError>;

/// Tunables, validated by the caller's configuration.
#[derive(Debug, Clone)]
pub struct GovernanceConfig {
    /// Lifetime of a staff session.
    pub staff_session_ttl: Duration,
    /// Sign-in attempts on one staff account from one client address.
    pub signin_per_account: RateLimit,
    /// Sign-in attempts on one staff account from all addresses together.
    pub signin_per_account_total: RateLimit,
    /// Sign-in attempts per client address.
    pub signin_per_address: RateLimit,
    /// Messages before the first reported one that a report case covers (K).
    pub report_context: u64,
    /// Reports per member.
    pub reports_per_user: RateLimit,
    /// How long a member in a new role waits before deciding access requests.
    pub new_role_decides_after: Duration,
    /// How long an enrolment code works.
    pub enrolment_ttl: Duration,
    /// How long a proposed staff change waits for its second person.
    pub staff_change_ttl: Duration,
    /// E-mail domains of agencies the deployment has verified (a legal request from an
    /// officer whose address is elsewhere is flagged); a domain covers its subdomains.
    pub verified_agency_domains: Vec<String>,
    /// How long messages are kept: epochs that ended longer ago lose their keys (and
    /// their messages and attachments) in the daily retention run. `None`: kept.
    pub retention: Option<Duration>,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            staff_session_ttl: Duration::from_secs(15 * 60),
            signin_per_account: RateLimit {
                burst: 5,
                per: Duration::from_secs(300),
            },
            signin_per_account_total: RateLimit {
                burst: 50,
                per: Duration::from_secs(300),
            },
            signin_per_address: RateLimit {
                burst: 20,
                per: Duration::from_secs(300),
            },
            report_context: 10,
            reports_per_user: RateLimit {
                burst: 10,
                per: Duration::from_secs(3600),
            },
            new_role_decides_after: Duration::from_secs(3 * 24 * 3600),
            enrolment_ttl: Duration::from_secs(3 * 24 * 3600),
            staff_change_ttl: Duration::from_secs(7 * 24 * 3600),
            verified_agency_domains: Vec::new(),
            retention: None,
        }
    }
}

/// The governance service. Cheap to clone.
#[derive(Clone)]
pub struct Governance {
    inner: Arc<Inner>,
}

struct Inner {
    store: Storage,
    keys: Arc<KeyService>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    config: GovernanceConfig,
    /// Staff sign-in attempts, kept in the store (they must hold across nodes).
    signin_by_account: SharedLimit,
    signin_by_account_total: SharedLimit,
    signin_by_address: SharedLimit,
    reports_by_user: KeyedRateLimiter<UserId>,
    /// Self-exports: a few a day per member (each reads their whole history).
    exports_by_user: KeyedRateLimiter<UserId>,
    /// Where members' access notices go live (set once the fan-out exists).
    notices: std::sync::OnceLock<Arc<dyn custodia_service::Fanout>>,
    /// The UTC day (since the epoch) retention last ran on this node.
    retention_day: std::sync::atomic::AtomicI64,
    /// Where this node's rewrap pass of a KEK rotation stands.
    rewrap: tokio::sync::Mutex<rotation::RewrapCursor>,
}

impl Governance {
    /// Assembles the service.
    pub fn new(
        store: Storage,
        keys: Arc<KeyService>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        config: GovernanceConfig,
    ) -> Self {
        let shared =
            |name, limit| SharedLimit::new(name, limit, store.limits.clone(), clock.clone());
        let signin_by_account = shared("staff-signin-account-address", config.signin_per_account);
        let signin_by_account_total =
            shared("staff-signin-account", config.signin_per_account_total);
        let signin_by_address = shared("staff-signin-address", config.signin_per_address);
        let reports_by_user = KeyedRateLimiter::new(config.reports_per_user, clock.clone());
        let exports_by_user = KeyedRateLimiter::new(
            custodia_core::RateLimit {
                burst: 3,
                per: Duration::from_secs(24 * 3600),
            },
            clock.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                audit,
                clock,
                config,
                signin_by_account,
                signin_by_account_total,
                signin_by_address,
                reports_by_user,
                exports_by_user,
                notices: std::sync::OnceLock::new(),
                retention_day: std::sync::atomic::AtomicI64::new(i64::MIN),
                rewrap: tokio::sync::Mutex::new(rotation::RewrapCursor::default()),
            }),
        }
    }

    /// Sends members their access notices live through `fanout` from now on (they are
    /// stored, and listed, either way).
    pub fn notify_through(&self, fanout: Arc<dyn custodia_service::Fanout>) {
        let _ = self.inner.notices.set(fanout);
    }
}

impl Governance {
    /// Takes one sign-in attempt (or enrolment) on `username` from `from`: from the
    /// address's budget, the account's budget for that address, and the account's larger
    /// budget over all addresses — so a stranger cannot lock a member out.
    pub(crate) async fn signin_attempt(&self, username: &str, from: IpAddr) -> ServiceResult<()> {
        let inner = &self.inner;
        let account = username.trim().to_ascii_lowercase();
        inner.signin_by_address.check(&from.to_string()).await?;
        inner
            .signin_by_account
            .check(&format!("{account} {from}"))
            .await?;
        inner.signin_by_account_total.check(&account).await
    }

    /// What `user`'s client needs to find the log's entries about them: their tag key and
    /// the log's verifier key (as text). Their own data, like their notices.
    pub fn member_log_key(&self, user: custodia_core::UserId) -> (custodia_audit::TagKey, String) {
        (
            self.inner
                .audit
                .subject_key(&custodia_audit::Subject::User(user)),
            self.inner.audit.verifier().to_string(),
        )
    }

    /// Appends an event to the audit log and returns its receipt; fails (closed) if the
    /// log cannot take it, so the action it records does not happen.
    pub(crate) async fn append(&self, event: AuditEvent) -> ServiceResult<Receipt> {
        self.inner.audit.append(&event).await.map_err(|e| {
            tracing::error!(error = %e, kind = event.kind.as_str(), "audit log append failed; refusing the staff action");
            ServiceError::Unavailable(format!("audit log: {e}"))
        })
    }
}
