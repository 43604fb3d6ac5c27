//! Who may ask for access and who must approve it, by reason code. Pure: no I/O.
//!
//! | reason | may ask | may approve | approvals |
//! |---|---|---|---|
//! | report review | moderator, senior moderator | senior moderator | 1 |
//! | legal process | legal officer | legal officer, senior moderator | 2, ≥ 1 legal officer |
//! | emergency disclosure | legal officer, senior moderator | legal officer, senior moderator | 1 now, a 2nd review within 24 h; a grant of at most 4 h |
//! | security incident | senior moderator, legal officer | legal officer | 1 |
//! | user self-access, support with consent | moderator, senior moderator | senior moderator | 1 |
//! | mandatory reporting (a case's preserved files only) | legal officer | legal officer, senior moderator | 1; a grant of at most 7 days |
//!
//! A broad scope (more than 30 days of messages) needs one approval more. Auditors and
//! admins never ask or approve: their roles read no content. Nobody approves their own
//! request.

use std::time::Duration;

use custodia_core::{ReasonCode, StaffRole};

/// The rules for one reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Roles that may ask.
    pub requesters: &'static [StaffRole],
    /// Roles that may approve.
    pub approvers: &'static [StaffRole],
    /// Approvals needed (before the broad-scope extra).
    pub required: u8,
    /// Whether at least one approval must come from a legal officer.
    pub needs_legal_officer: bool,
    /// How long a request may wait for its decisions.
    pub pending_for: Duration,
    /// Whether a second approver must review within 24 h of the grant.
    pub second_review: bool,
    /// The longest grant this reason may ask for.
    pub max_grant: Duration,
}

const MODERATORS: &[StaffRole] = &[StaffRole::Moderator, StaffRole::SeniorModerator];
const SENIOR: &[StaffRole] = &[StaffRole::SeniorModerator];
const LEGAL: &[StaffRole] = &[StaffRole::LegalOfficer];
const LEGAL_OR_SENIOR: &[StaffRole] = &[StaffRole::LegalOfficer, StaffRole::SeniorModerator];
const DAY: Duration = Duration::from_secs(24 * 3600);

/// How long after the grant an emergency's second review is due.
pub(crate) const SECOND_REVIEW_WITHIN: Duration = DAY;
/// A scope spanning more than this is broad.
pub(crate) const BROAD_SPAN: Duration = Duration::from_secs(30 * 24 * 3600);

impl Policy {
    /// The rules for `reason`.
    pub fn of(reason: ReasonCode) -> Self {
        let base = Self {
            requesters: MODERATORS,
            approvers: SENIOR,
            required: 1,
            needs_legal_officer: false,
            pending_for: DAY,
            second_review: false,
            max_grant: 30 * DAY,
        };
        match reason {
            ReasonCode::LegalProcess => Self {
                requesters: LEGAL,
                approvers: LEGAL_OR_SENIOR,
                required: 2,
                needs_legal_officer: true,
                ..base
            },
            ReasonCode::EmergencyDisclosure => Self {
                requesters: LEGAL_OR_SENIOR,
                approvers: LEGAL_OR_SENIOR,
                pending_for: Duration::from_secs(3600),
                second_review: true,
                max_grant: Duration::from_secs(4 * 3600),
                ..base
            },
            ReasonCode::SecurityIncident => Self {
                requesters: LEGAL_OR_SENIOR,
                approvers: LEGAL,
                ..base
            },
            ReasonCode::MandatoryReporting => Self {
                requesters: LEGAL,
                approvers: LEGAL_OR_SENIOR,
                max_grant: 7 * DAY,
                ..base
            },
            // Report review, user self-access, support with consent; and any reason added
            // later starts from the strictest single-approval rule.
            _ => base,
        }
    }

    /// Whether the approvals given (the approvers' roles) satisfy the policy with
    /// `required` approvals.
    pub fn satisfied(&self, required: u8, approved_by: &[StaffRole]) -> bool {
        approved_by.len() >= usize::from(required)
            && (!self.needs_legal_officer || approved_by.contains(&StaffRole::LegalOfficer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_process_needs_two_with_a_legal_officer() {
        let p = Policy::of(ReasonCode::LegalProcess);
        assert!(!p.satisfied(2, &[StaffRole::LegalOfficer]));
        assert!(!p.satisfied(2, &[StaffRole::SeniorModerator, StaffRole::SeniorModerator]));
        assert!(p.satisfied(2, &[StaffRole::SeniorModerator, StaffRole::LegalOfficer]));
        assert!(!p.requesters.contains(&StaffRole::Moderator));
    }

    #[test]
    fn no_reason_lets_auditors_or_admins_ask_or_approve() {
        for r in ReasonCode::ALL {
            let p = Policy::of(*r);
            for role in [StaffRole::Auditor, StaffRole::Admin] {
                assert!(!p.requesters.contains(&role) && !p.approvers.contains(&role));
            }
        }
        assert_eq!(
            Policy::of(ReasonCode::EmergencyDisclosure).pending_for,
            Duration::from_secs(3600)
        );
    }
}
