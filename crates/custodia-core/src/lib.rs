//! Domain types of custodia: identifiers, validated input, time, epochs and rate limits.
//!
//! This crate does no I/O and knows no wire format. Everything a user can type is parsed
//! here into a checked type (`Username`, `MessageBody`, `ClientMsgId`, …), so the layers
//! above never re-validate.
//!
//! Layout:
//! - `ids` — opaque identifiers (`UserId`, `ConversationId`, …).
//! - `input` — checked user input and its `ValidationError`.
//! - `clock` — the injected clock and `Timestamp`.
//! - `epoch` — how time is bucketed into key epochs.
//! - `ratelimit` — a keyed token bucket driven by the clock.
//! - `safety` — age bands and "who can message me" (teen protections).
//! - `governance` — staff roles, case kinds, report categories, reason codes, data tiers, request states.

#[macro_use]
mod named;
mod clock;
mod epoch;
mod governance;
mod ids;
mod input;
mod ratelimit;
mod redact;
mod safety;

pub use clock::{Clock, ManualClock, Timestamp};
pub use epoch::{Epoch, EpochScheme};
pub use governance::{
    CaseKind, CasePriority, DataCategory, DataTier, HoldEnd, LegalOutcome, LegalProcessType,
    ReasonCode, RejectionReason, ReportCategory, RequestStatus, StaffChangeKind, StaffChangeStatus,
    StaffRole,
};
pub use ids::{
    AccessNoticeId, AttachmentId, CaseId, ConversationId, DeploymentId, HoldId, LegalRequestId,
    MessageId, RequestId, SessionId, StaffChangeId, StaffId, UserId,
};
pub use input::{
    BirthDate, ClientMsgId, ConversationKind, Country, Day, GroupTitle, MAX_BODY_BYTES, MemberRole,
    MessageBody, Password, Username, ValidationError,
};
pub use ratelimit::{KeyedRateLimiter, RateLimit, TokenBucket};
pub use redact::redact_url;
pub use safety::{AgeBand, WhoCanMessage};
