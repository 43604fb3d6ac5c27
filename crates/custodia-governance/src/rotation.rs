//! KEK rotation while serving. The operator's tool (`custodia admin keys rotate`) adds a
//! KEK version and records in the store that it is current; every running server then
//! adopts it for new seals (as soon as its provider holds it), logs each recorded step,
//! and rewraps what is still sealed under older versions — data keys, staff TOTP
//! secrets, case texts, served documents — a rate-limited share at a time, each item by
//! compare-and-swap, so that any number of nodes can work at once and a crash or restart
//! only means the next pass picks up what is left. When nothing older is left, the
//! rotation is recorded as done (logged too); then `custodia admin keys retire` may
//! destroy an old version.

use custodia_audit::{AuditEvent, EventKind};
use custodia_service::ServiceResult;
use custodia_store::{
    KekItem, KekSealed, KekSealedKind, KekStep, KekStepKind, KekUsage, WrappedDek,
};

use crate::Governance;

/// Items read per page.
const PAGE: u32 = 25;

/// Once a rotation is complete, how often a node still looks for items sealed under an
/// older version (a node that had not adopted the new version yet may have made one);
/// looking means reading through every data key, so not every second.
const SWEEP_AFTER_COMPLETE_MS: i64 = 10 * 60 * 1000;

/// Where the rewrap pass of one node stands: the kind and the last key it handled.
#[derive(Debug, Default)]
pub(crate) struct RewrapCursor {
    target: u32,
    kind: usize,
    after: Option<KekItem>,
    /// Items this pass could not rewrap (their sealed bytes do not open).
    failed: u64,
    /// When this node last looked through everything after the rotation was complete.
    swept_at: Option<custodia_core::Timestamp>,
}

impl RewrapCursor {
    /// A fresh pass when the target version changed.
    fn aim_at(&mut self, target: u32) {
        if self.target != target {
            *self = Self {
                target,
                ..Self::default()
            };
        }
    }
}

/// What one round of the rotation duty did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationRound {
    /// The version new seals use on this node.
    pub current: u32,
    /// Items handled in this round (rewrapped, or found not to open and left).
    pub rewrapped: u64,
    /// Steps logged in this round.
    pub logged: u64,
    /// Whether the rotation to `current` is complete (nothing under an older version).
    pub complete: bool,
}

/// The state of the deployment's KEKs, for `custodia admin keys status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekStatus {
    /// The version the operator last made current (none: never rotated).
    pub target: Option<u32>,
    /// What is sealed under each version, by kind.
    pub usage: Vec<KekUsage>,
    /// Every recorded step.
    pub steps: Vec<KekStep>,
}

impl KekStatus {
    /// Reads the state from the store.
    pub async fn read(store: &custodia_store::Storage) -> ServiceResult<Self> {
        let steps = store.deks.kek_steps().await?;
        let mut usage = store.deks.kek_usage().await?;
        usage.sort_by_key(|u| (u.version, u.kind));
        Ok(Self {
            target: target(&steps),
            usage,
            steps,
        })
    }

    /// How many items are sealed under `version`.
    pub fn under(&self, version: u32) -> u64 {
        self.usage
            .iter()
            .filter(|u| u.version == version)
            .map(|u| u.count)
            .sum()
    }

    /// How many items are sealed under any version.
    pub fn total(&self) -> u64 {
        self.usage.iter().map(|u| u.count).sum()
    }

    /// Whether step `kind` of `version` is recorded.
    pub fn has(&self, kind: KekStepKind, version: u32) -> bool {
        self.steps
            .iter()
            .any(|s| s.kind == kind && s.version == version)
    }
}

/// The version the servers use: the one the operator last made current, or before any
/// rotation the first one `held` (a version a `rotate` added but stopped before
/// recording is not used until it is recorded).
pub fn version_in_use(steps: &[KekStep], held: &[u32]) -> Option<u32> {
    target(steps).or_else(|| held.first().copied())
}

/// The version the operator last made current.
fn target(steps: &[KekStep]) -> Option<u32> {
    steps
        .iter()
        .filter(|s| s.kind == KekStepKind::Rotated)
        .map(|s| s.version)
        .max()
}

/// `name=value` words of a step's detail as log scope fields.
fn detail_fields(detail: &str) -> Vec<(String, String)> {
    detail
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The counts of a usage listing under `version`, as a step's detail.
pub fn usage_detail(usage: &[KekUsage], version: u32) -> String {
    KekSealedKind::ALL
        .into_iter()
        .map(|kind| {
            let n: u64 = usage
                .iter()
                .filter(|u| u.kind == kind && u.version == version)
                .map(|u| u.count)
                .sum();
            format!("{}={n}", kind.as_str().replace(' ', "_"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Governance {
    /// One round of the rotation duty (a running server runs it every second): adopts the
    /// version the operator made current, logs the recorded steps not logged yet, and
    /// rewraps up to `budget` items still sealed under older versions, paced over about a
    /// second (page by page), so the store takes them between sends, not as one burst.
    pub async fn rotation_round(&self, budget: u64) -> ServiceResult<RotationRound> {
        let inner = &self.inner;
        let keys = &inner.keys;
        let steps = inner.store.deks.kek_steps().await?;
        let recorded = target(&steps);
        let held = keys.kek_versions();
        // Versions the operator retired leave this node's provider too.
        if steps
            .iter()
            .any(|s| s.kind == KekStepKind::Retired && held.contains(&s.version))
        {
            keys.refresh_keks()?;
        }
        let mut round = RotationRound {
            current: keys.current_kek(),
            ..RotationRound::default()
        };
        let wanted = version_in_use(&steps, &held);
        if let Some(target) = wanted
            && target != round.current
        {
            match keys.adopt_kek(target) {
                Ok(()) => {
                    tracing::info!(version = target, "new seals now use the rotated KEK");
                    round.current = target;
                }
                Err(e) => {
                    // Another node rotated and this node's keyring lacks the version yet.
                    tracing::warn!(version = target, error = %e,
                        "the KEK made current is not in this node's keyring or token yet: copy the keyring from the node it was made on");
                    return Ok(round);
                }
            }
        }
        for step in steps.iter().filter(|s| s.log_index.is_none()) {
            self.log_kek_step(step).await?;
            round.logged += 1;
        }
        let Some(target) = recorded else {
            round.complete = true;
            return Ok(round);
        };
        if steps
            .iter()
            .any(|s| s.kind == KekStepKind::Rewrapped && s.version == target)
        {
            round.complete = true;
            let now = inner.clock.now();
            let mut cursor = inner.rewrap.lock().await;
            cursor.aim_at(target);
            let recent = cursor.swept_at.is_some_and(|t| {
                now.as_millis().saturating_sub(t.as_millis()) < SWEEP_AFTER_COMPLETE_MS
            });
            // A pass in progress goes on; a new one starts only every so often.
            if recent && cursor.kind == 0 && cursor.after.is_none() {
                return Ok(round);
            }
            if cursor.kind == 0 && cursor.after.is_none() {
                cursor.swept_at = Some(now);
            }
        }
        if budget == 0 {
            return Ok(round);
        }
        round.rewrapped = self.rewrap_some(target, budget).await?;
        if !round.complete && round.rewrapped == 0 {
            round.complete = self.finish_if_done(target).await?;
            if round.complete {
                // The pass that found nothing left counts as this node's sweep.
                inner.rewrap.lock().await.swept_at = Some(inner.clock.now());
            }
        }
        Ok(round)
    }

    /// Rewraps up to `budget` items sealed under versions other than `target`, from where
    /// this node's pass stands; returns how many it rewrapped.
    async fn rewrap_some(&self, target: u32, budget: u64) -> ServiceResult<u64> {
        let inner = &self.inner;
        let mut cursor = inner.rewrap.lock().await;
        cursor.aim_at(target);
        let mut done = 0;
        while done < budget {
            let Some(&kind) = KekSealedKind::ALL.get(cursor.kind) else {
                // A whole pass ended: start again (items that failed, or that a node not
                // yet on the new version sealed meanwhile, are looked at again).
                if cursor.failed > 0 {
                    tracing::warn!(
                        items = cursor.failed,
                        "some items sealed under an old KEK could not be opened to rewrap"
                    );
                }
                *cursor = RewrapCursor {
                    target,
                    swept_at: cursor.swept_at,
                    ..RewrapCursor::default()
                };
                break;
            };
            let limit = u32::try_from((budget - done).min(u64::from(PAGE))).unwrap_or(PAGE);
            let page = inner
                .store
                .deks
                .kek_sealed_not_under(kind, target, cursor.after.clone(), limit)
                .await?;
            let Some(last) = page.last() else {
                cursor.kind += 1;
                cursor.after = None;
                continue;
            };
            cursor.after = Some(last.item.clone());
            let got = page.len();
            let mut replacements = tokio::task::JoinSet::new();
            for item in page {
                done += 1;
                let new = match self.rewrap_one(&item).await {
                    Ok(new) => new,
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), version = item.sealed.kek_version, error = %e,
                            "an item sealed under an old KEK does not open; left as it is");
                        cursor.failed += 1;
                        continue;
                    }
                };
                let deks = inner.store.deks.clone();
                // Concurrent, so the store commits the page's replacements together.
                replacements.spawn(async move { deks.replace_kek_sealed(item, new).await });
            }
            while let Some(r) = replacements.join_next().await {
                // A replacement lost to a concurrent change is fine: whoever changed it
                // sealed it under the current version.
                r.map_err(|e| custodia_service::ServiceError::Internal(e.to_string()))??;
            }
            // This page's share of the second the budget is for.
            let share = std::time::Duration::from_secs(1).mul_f64(got as f64 / budget as f64);
            tokio::time::sleep(share).await;
        }
        Ok(done)
    }

    async fn rewrap_one(&self, item: &KekSealed) -> ServiceResult<WrappedDek> {
        let sha = match &item.item {
            KekItem::Document { request, position } => {
                let described = self
                    .inner
                    .store
                    .cases
                    .legal_request(*request)
                    .await?
                    .and_then(|r| {
                        usize::try_from(*position)
                            .ok()
                            .and_then(|p| r.documents.get(p).map(|d| d.sha256))
                    });
                Some(described.ok_or_else(|| {
                    custodia_service::ServiceError::Internal(
                        "a served document without its description".into(),
                    )
                })?)
            }
            _ => None,
        };
        Ok(self.inner.keys.rewrap(item, sha.as_ref())?)
    }

    /// Records the rotation to `target` as done if nothing is sealed under another
    /// version; whether it is done.
    async fn finish_if_done(&self, target: u32) -> ServiceResult<bool> {
        let usage = self.inner.store.deks.kek_usage().await?;
        if usage.iter().any(|u| u.version != target && u.count > 0) {
            return Ok(false);
        }
        let step = KekStep {
            kind: KekStepKind::Rewrapped,
            version: target,
            at: self.inner.clock.now(),
            detail: usage_detail(&usage, target),
            log_index: None,
        };
        if self.inner.store.deks.add_kek_step(step.clone()).await? {
            tracing::info!(
                version = target,
                "every key is wrapped under the current KEK: the rotation is complete"
            );
            self.log_kek_step(&step).await?;
        }
        Ok(true)
    }

    /// Logs a KEK step (`key.rotated`, with the step in its scope) and records the entry.
    async fn log_kek_step(&self, step: &KekStep) -> ServiceResult<()> {
        let mut scope = vec![
            ("step".to_owned(), step.kind.as_str().to_owned()),
            ("version".to_owned(), step.version.to_string()),
            ("at_ms".to_owned(), step.at.as_millis().to_string()),
        ];
        scope.extend(detail_fields(&step.detail));
        let receipt = self
            .append(AuditEvent {
                kind: EventKind::KeyRotated,
                time: self.inner.clock.now(),
                actor: None,
                reason: None,
                case: None,
                subjects: Vec::new(),
                scope,
            })
            .await?;
        self.inner
            .store
            .deks
            .kek_step_logged(step.kind, step.version, receipt.index)
            .await?;
        Ok(())
    }
}
