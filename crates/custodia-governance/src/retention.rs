//! Retention by crypto-shredding: the daily run destroys the data keys of the epochs that
//! ended before the retention period (their sealed messages and attachments become
//! unreadable for everyone, for good, and are deleted), keeping every epoch a hold covers
//! until the hold ends. The run, and what it destroyed, is logged — counts and epoch
//! labels, never a conversation or content.

use custodia_audit::{AuditEvent, EventKind};
use custodia_core::EpochScheme;
use custodia_service::ServiceResult;

use crate::Governance;

/// Epochs destroyed per commit.
const BATCH: u32 = 100;

/// What one retention run destroyed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionRun {
    /// Epochs whose keys were destroyed.
    pub epochs: u64,
    /// Messages deleted with them.
    pub messages: u64,
    /// Attachments deleted with them.
    pub attachments: u64,
}

impl Governance {
    /// Runs retention if it has not run on this node today (UTC, by the server's clock);
    /// the server calls it every minute.
    pub async fn apply_retention_daily(&self) -> ServiceResult<Option<RetentionRun>> {
        let today = self.inner.clock.now().as_millis().div_euclid(86_400_000);
        let last = self
            .inner
            .retention_day
            .swap(today, std::sync::atomic::Ordering::Relaxed);
        if last == today {
            return Ok(None);
        }
        let run = self.apply_retention().await;
        self.release_closed_names().await;
        if run.is_err() {
            // Try again at the next pass.
            self.inner
                .retention_day
                .store(last, std::sync::atomic::Ordering::Relaxed);
        }
        run
    }

    /// Runs retention now (the server does it once a day): `None` when no retention is
    /// configured. Each node may run it; the store destroys each epoch once.
    pub async fn apply_retention(&self) -> ServiceResult<Option<RetentionRun>> {
        let inner = &self.inner;
        let Some(keep) = inner.config.retention else {
            return Ok(None);
        };
        let now = inner.clock.now();
        let cutoff = custodia_core::Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX)),
        );
        let month = EpochScheme::Month.epoch_of(cutoff).as_str().to_owned();
        let day = EpochScheme::Day.epoch_of(cutoff).as_str().to_owned();
        let mut run = RetentionRun::default();
        let mut labels = std::collections::BTreeSet::new();
        loop {
            let shredded = inner
                .store
                .messages
                .shred_epochs(month.clone(), day.clone(), BATCH)
                .await?;
            for s in &shredded {
                run.epochs += 1;
                run.messages += s.messages;
                run.attachments += s.attachments;
                labels.insert(s.epoch.as_str().to_owned());
            }
            if (shredded.len() as u32) < BATCH {
                break;
            }
        }
        self.append(AuditEvent {
            kind: EventKind::RetentionApplied,
            time: inner.clock.now(),
            actor: None,
            reason: None,
            case: None,
            subjects: Vec::new(),
            scope: vec![
                ("cutoff_ms".into(), cutoff.as_millis().to_string()),
                ("epochs".into(), run.epochs.to_string()),
                ("messages".into(), run.messages.to_string()),
                ("attachments".into(), run.attachments.to_string()),
                (
                    "labels".into(),
                    labels.into_iter().collect::<Vec<_>>().join(" "),
                ),
            ],
        })
        .await?;
        if run.epochs > 0 {
            tracing::info!(
                epochs = run.epochs,
                messages = run.messages,
                "retention destroyed the keys of expired epochs"
            );
            self.scrub().await;
        }
        Ok(Some(run))
    }

    /// Logs a member's closing of their account (what it destroyed, in counts; no
    /// subject), after the fact: the closure stands even if the log cannot take it now.
    pub async fn log_account_closed(&self, closure: &custodia_store::AccountClosure) {
        let event = AuditEvent {
            kind: EventKind::AccountClosed,
            time: self.inner.clock.now(),
            actor: None,
            reason: None,
            case: None,
            subjects: Vec::new(),
            scope: vec![
                ("messages".into(), closure.deleted.len().to_string()),
                ("kept_under_hold".into(), closure.kept.to_string()),
                ("attachments".into(), closure.attachments.to_string()),
            ],
        };
        if let Err(e) = self.append(event).await {
            tracing::error!(error = %e, "a closed account could not be logged");
        }
        self.scrub().await;
    }

    /// When the name of an account closed now becomes free (the first daily run after the
    /// grace period frees it).
    pub fn closed_name_free_from(&self) -> custodia_core::Timestamp {
        let grace = i64::try_from(CLOSED_NAME_GRACE.as_millis()).unwrap_or(i64::MAX);
        custodia_core::Timestamp::from_millis(
            self.inner.clock.now().as_millis().saturating_add(grace),
        )
    }

    /// A member begins exporting their own data: rate limited (3 a day), and logged —
    /// before anything is read — as their own access, with them as the subject.
    pub async fn begin_self_export(&self, who: &custodia_service::Principal) -> ServiceResult<()> {
        self.inner
            .exports_by_user
            .check(&who.user_id)
            .map_err(|retry_after| custodia_service::ServiceError::RateLimited { retry_after })?;
        self.append(AuditEvent {
            kind: EventKind::SelfExport,
            time: self.inner.clock.now(),
            actor: None,
            reason: None,
            case: None,
            subjects: vec![custodia_audit::Subject::User(who.user_id)],
            scope: Vec::new(),
        })
        .await?;
        Ok(())
    }

    /// Frees the names of accounts closed longer than [`CLOSED_NAME_GRACE`] ago.
    pub async fn release_closed_names(&self) {
        let now = self.inner.clock.now().as_millis();
        let grace = i64::try_from(CLOSED_NAME_GRACE.as_millis()).unwrap_or(i64::MAX);
        let before = custodia_core::Timestamp::from_millis(now.saturating_sub(grace));
        match self.inner.store.accounts.release_closed_names(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(names = n, "names of closed accounts freed"),
            Err(e) => tracing::warn!(error = %e, "freeing closed accounts' names failed"),
        }
    }

    /// Makes destroyed data unrecoverable from the store's own files (see
    /// [`custodia_store::MessageStore::scrub`]); a busy store is tried again next time.
    pub(crate) async fn scrub(&self) {
        match self.inner.store.messages.scrub().await {
            Ok(true) => {}
            Ok(false) => tracing::info!("the store was busy; scrubbing waits for the next pass"),
            Err(e) => tracing::warn!(error = %e, "scrubbing the store failed"),
        }
    }
}

/// How long a closed account's name stays taken (so nobody poses as the member who just
/// left), before the daily run frees it.
pub(crate) const CLOSED_NAME_GRACE: std::time::Duration =
    std::time::Duration::from_secs(30 * 86_400);
