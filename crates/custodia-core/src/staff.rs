//! Staff roles. A staff member holds exactly one role, so duties stay separated: the
//! admin who manages staff is never also a reader of content.

use std::fmt;

use crate::ValidationError;

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StaffRole {
    /// Reviews reports within grants.
    Moderator,
    /// Reviews reports and approves report-review access.
    SeniorModerator,
    /// Handles legal requests and approves legal disclosure.
    LegalOfficer,
    /// Reads the audit log and its full records; no content.
    Auditor,
    /// Manages staff accounts and roles; no content.
    Admin,
}

impl StaffRole {
    /// Every role.
    pub const ALL: [StaffRole; 5] = [
        Self::Moderator,
        Self::SeniorModerator,
        Self::LegalOfficer,
        Self::Auditor,
        Self::Admin,
    ];

    /// Stable name for storage, the wire and the audit log.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Moderator => "moderator",
            Self::SeniorModerator => "senior_moderator",
            Self::LegalOfficer => "legal_officer",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(ValidationError::Malformed {
                field: "role",
                hint: "one of moderator, senior_moderator, legal_officer, auditor, admin",
            })
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_ones_are_refused() {
        for r in StaffRole::ALL {
            assert_eq!(StaffRole::parse(r.as_str()).unwrap(), r);
        }
        assert!(StaffRole::parse("superuser").is_err());
        assert!(StaffRole::parse("Admin").is_err());
    }
}
