//! The closed vocabularies of governed access: staff roles, case kinds, report categories, reason
//! codes, data tiers and request states. Each has one stable name for storage, the wire
//! and the audit log, and anything else is refused.

named_enum!(
    /// What a staff member may do. Each holds exactly one role, so duties stay separated:
    /// the admin who manages staff is never also a reader of content.
    StaffRole, "role" {
        /// Reviews reports within grants.
        Moderator => "moderator",
        /// Reviews reports and approves report-review access.
        SeniorModerator => "senior_moderator",
        /// Handles legal requests and approves legal disclosure.
        LegalOfficer => "legal_officer",
        /// Reads the audit log and its full records; no content.
        Auditor => "auditor",
        /// Manages staff accounts and roles; no content.
        Admin => "admin",
    }
);

named_enum!(
    /// How a case was opened.
    CaseKind, "kind" {
        /// A member reported messages.
        Report => "report",
        /// A legal request (warrant, court order, emergency disclosure request).
        Legal => "legal",
        /// A message matched the text rules (an automated signal; nobody has read it).
        Signal => "signal",
    }
);

named_enum!(
    /// How urgently a case is handled: the queue lists `high` first, then by age.
    CasePriority, "priority" {
        /// Hash-list matches and child-safety text rules (as configured).
        High => "high",
        /// Everything else.
        Normal => "normal",
    }
);

named_enum!(
    /// What a report is about.
    ReportCategory, "category" {
        /// Child sexual abuse or exploitation.
        ChildSafety => "child_safety",
        /// Grooming of a minor.
        Grooming => "grooming",
        /// Harassment or bullying.
        Harassment => "harassment",
        /// Spam or scams.
        Spam => "spam",
        /// Self-harm or suicide.
        SelfHarm => "self_harm",
        /// Anything else.
        Other => "other",
    }
);

named_enum!(
    /// Why staff ask for access. A closed set: there is no "other".
    ReasonCode, "reason" {
        /// Reviewing a user report.
        ReportReview => "report_review",
        /// Legal process (warrant, court order, subpoena).
        LegalProcess => "legal_process",
        /// An emergency disclosure request (imminent danger).
        EmergencyDisclosure => "emergency_disclosure",
        /// A security incident.
        SecurityIncident => "security_incident",
        /// A user asked for their own data.
        UserSelfAccess => "user_self_access",
        /// Support, with the user's consent.
        SupportWithConsent => "support_with_consent",
        /// A report the law requires to the national clearinghouse (e.g. NCMEC's
        /// CyberTipline in the US) of a case's preserved files.
        MandatoryReporting => "mandatory_reporting",
    }
);

named_enum!(
    /// What kind of legal process a legal case answers (the categories platforms'
    /// transparency reports count).
    LegalProcessType, "process" {
        /// A subpoena.
        Subpoena => "subpoena",
        /// A court order.
        CourtOrder => "court_order",
        /// A search warrant.
        SearchWarrant => "search_warrant",
        /// An emergency request (imminent danger of death or serious injury).
        EmergencyRequest => "emergency_request",
        /// A request to preserve data pending further process.
        PreservationRequest => "preservation_request",
        /// A request through a mutual legal assistance treaty, or a letter rogatory
        /// (another country's process through the courts).
        MutualLegalAssistance => "mutual_legal_assistance",
        /// Any other process (it compels nothing by itself).
        Other => "other",
    }
);

named_enum!(
    /// What a legal request asks for, from least to most intrusive.
    DataCategory, "data category" {
        /// Who holds an account: username, date of birth, when it was created.
        Subscriber => "subscriber",
        /// Who wrote to whom when: senders, times, sequence numbers; no bodies.
        Metadata => "metadata",
        /// Message bodies.
        Content => "content",
    }
);

named_enum!(
    /// How a legal request was answered after review.
    LegalOutcome, "outcome" {
        /// Accepted as served.
        Full => "full",
        /// Accepted in part: narrowed (the narrowing is written down).
        Partial => "partial",
        /// Rejected (with a reason).
        Rejected => "rejected",
    }
);

named_enum!(
    /// Why a legal request was rejected. A closed set.
    RejectionReason, "rejection reason" {
        /// The process is not valid (wrong form, not signed, expired).
        InvalidProcess => "invalid_process",
        /// Something the review needs is missing.
        Incomplete => "incomplete",
        /// It asks for more than the matter can justify.
        Overbroad => "overbroad",
        /// It is addressed to another company or service.
        WrongEntity => "wrong_entity",
        /// No account matches the identifiers given.
        NoSuchAccount => "no_such_account",
        /// The process is not legally sufficient for the data asked for.
        InsufficientForTier => "insufficient_for_tier",
    }
);

named_enum!(
    /// How a preservation hold ended.
    HoldEnd, "hold end" {
        /// A legal officer released it.
        Released => "released",
        /// Its time ran out.
        Expired => "expired",
    }
);

named_enum!(
    /// What an access grant reveals.
    DataTier, "tier" {
        /// Who wrote when: senders, times, sequence numbers; no bodies.
        Metadata => "metadata",
        /// Message bodies as well.
        Content => "content",
        /// The files a case preserved (a hash-list match), never delivered to anyone:
        /// for legal process or mandatory reporting only.
        Evidence => "evidence",
    }
);

named_enum!(
    /// Where an access request stands. Pending → Approved | Denied | Expired; Approved →
    /// Active → Completed | Revoked | Expired. Decisions are final.
    RequestStatus, "status" {
        /// Waiting for approvals.
        Pending => "pending",
        /// Approved; not read yet.
        Approved => "approved",
        /// Approved and read at least once.
        Active => "active",
        /// Denied by an approver.
        Denied => "denied",
        /// Not decided in time, or the grant's window ended.
        Expired => "expired",
        /// Closed by the requester.
        Completed => "completed",
        /// Withdrawn.
        Revoked => "revoked",
    }
);

named_enum!(
    /// A proposed change to the staff: a new account, or another's role or activity.
    StaffChangeKind, "staff change kind" {
        /// A new staff account (enrolled by its member once approved).
        Create => "create",
        /// A role change, deactivation or reactivation.
        Update => "update",
    }
);

named_enum!(
    /// Where a proposed staff change stands. Pending → Approved | Denied | Expired;
    /// decisions are final. Only an approved change takes effect.
    StaffChangeStatus, "staff change status" {
        /// Waiting for a second person.
        Pending => "pending",
        /// Approved and applied (or, for a deactivation, applied at once).
        Approved => "approved",
        /// Refused by the second person.
        Denied => "denied",
        /// Not decided in time.
        Expired => "expired",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_unknown_names_are_refused() {
        for r in StaffRole::ALL {
            assert_eq!(StaffRole::parse(r.as_str()).unwrap(), *r);
        }
        assert!(StaffRole::parse("superuser").is_err());
        assert!(StaffRole::parse("Admin").is_err());
        for r in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(r.as_str()).unwrap(), *r);
        }
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()).unwrap(), *s);
        }
        let err = ReasonCode::parse("curiosity").unwrap_err().to_string();
        assert!(err.contains("report_review"), "{err}");
        assert!(ReasonCode::parse("").is_err());
        assert!(DataTier::parse("everything").is_err());
    }
}
