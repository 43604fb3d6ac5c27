//! Auditors read the full records kept beside the log's entries (which name the subjects
//! the public entries only pseudonymize). Each such read is itself logged.

use custodia_audit::{AuditEvent, EventKind};
use custodia_core::StaffRole;
use custodia_service::{ServiceError, ServiceResult};

use crate::{Governance, StaffPrincipal};

impl Governance {
    /// The transparency report over `period`, from the public entries of the last kept
    /// checkpoint (any staff member; it says nothing the public log does not).
    pub async fn transparency_report(
        &self,
        _by: &StaffPrincipal,
        period: custodia_transparency::Period,
    ) -> ServiceResult<custodia_proto::report::TransparencyReport> {
        self.inner
            .audit
            .report(period)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("audit log: {e}")))?
            .ok_or(ServiceError::Unavailable(
                "the audit log has no checkpoint yet".into(),
            ))
    }

    /// The full record of audit log entry `index` (auditors only; logged first).
    pub async fn audit_record(&self, by: &StaffPrincipal, index: u64) -> ServiceResult<AuditEvent> {
        by.require(
            &[StaffRole::Auditor],
            "only auditors read the log's full records",
        )?;
        let record = self
            .inner
            .audit
            .record(index)
            .await
            .map_err(|e| ServiceError::Internal(format!("audit record {index}: {e}")))?
            .ok_or(ServiceError::NotFound("audit log entry"))?;
        self.append(AuditEvent {
            kind: EventKind::AccessRead,
            time: self.inner.clock.now(),
            actor: Some(by.actor()),
            reason: None,
            case: record.case.clone(),
            subjects: Vec::new(),
            scope: vec![
                ("what".into(), "audit log record".into()),
                ("entry".into(), index.to_string()),
            ],
        })
        .await?;
        Ok(record)
    }
}
