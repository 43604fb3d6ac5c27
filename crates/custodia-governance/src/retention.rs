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
        }
        Ok(Some(run))
    }
}
