//! Governed access: who on the platform's staff may do what, and the record of it.
//!
//! Staff are principals apart from users. Each holds exactly one [`StaffRole`]; signs in
//! with a password and a TOTP code (each code works once); gets a short-lived session.
//! Every staff action — sign-ins (and refused ones), account and role changes — is
//! appended to the audit log *before* it takes effect: if the log cannot be written, the
//! action fails. The admin role manages staff and can read no content.
//!
//! Layout:
//! - `staff` — staff accounts, sign-in, sessions, administration.
//!
//! Reports, cases, access requests, approvals and grants build on this (issue 5).

mod staff;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use custodia_audit::AuditLog;
use custodia_core::{Clock, KeyedRateLimiter, RateLimit};
use custodia_keys::KeyService;
use custodia_store::Storage;

pub use staff::{NewStaff, NewStaffSession, StaffPrincipal, StaffView};

/// Tunables, validated by the caller's configuration.
#[derive(Debug, Clone)]
pub struct GovernanceConfig {
    /// Lifetime of a staff session.
    pub staff_session_ttl: Duration,
    /// Sign-in attempts per staff account.
    pub signin_per_account: RateLimit,
    /// Sign-in attempts per client address.
    pub signin_per_address: RateLimit,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            staff_session_ttl: Duration::from_secs(15 * 60),
            signin_per_account: RateLimit {
                burst: 5,
                per: Duration::from_secs(300),
            },
            signin_per_address: RateLimit {
                burst: 20,
                per: Duration::from_secs(300),
            },
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
    signin_by_account: KeyedRateLimiter<String>,
    signin_by_address: KeyedRateLimiter<IpAddr>,
    /// Password hashes running at once (each takes ~19 MiB and a core for tens of ms).
    hashing: tokio::sync::Semaphore,
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
        let signin_by_account = KeyedRateLimiter::new(config.signin_per_account, clock.clone());
        let signin_by_address = KeyedRateLimiter::new(config.signin_per_address, clock.clone());
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                audit,
                clock,
                config,
                signin_by_account,
                signin_by_address,
                hashing: tokio::sync::Semaphore::new(2),
            }),
        }
    }
}
