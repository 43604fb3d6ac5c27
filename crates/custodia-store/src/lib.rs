//! The storage seam: one trait per aggregate, held as `Arc<dyn Trait>`.
//!
//! **Architecture invariant: storage never sees plaintext.** Message bodies arrive here
//! already sealed ([`SealedBody`]) and data keys already wrapped ([`WrappedDek`]); session
//! tokens arrive hashed ([`TokenHash`]). A backend stores and returns bytes; it cannot
//! open them.
//!
//! Layout:
//! - `records` — what is stored: users, sessions, conversations, messages, wrapped keys.
//! - `traits` — the aggregates' interfaces and their duties.
//! - `error` — [`StoreError`], which every backend maps its own errors into.
//!
//! Backends live in their own crates (`custodia-store-sqlite`, …) with their migrations.

mod error;
mod records;
pub mod rows;
mod throttle;
mod traits;

pub use error::{StoreError, StoreResult};
pub use records::{
    AccessNoticeRecord, AccessRequestRecord, AccountClosure, AddMember, Agency, Appended,
    AttachmentRecord, CaseRecord, ConnectionRecord, ConversationRecord, ConversationSummary,
    DecisionRecord, EvidenceRecord, FlaggedSignal, Franking, HashKind, HashRange, HoldRecord,
    KekItem, KekSealed, KekSealedKind, KekStep, KekStepKind, KekUsage, LegalRequestRecord,
    LegalReview, LegalTarget, LogAppend, MemberRecord, NewConversation, NewMessage,
    NondisclosureOrder, NoticeRelease, Officer, PendingSignal, SealedBody, SealedTotp, SeqRange,
    ServedDocument, SessionRecord, ShreddedEpoch, StaffChangeRecord, StaffEffect, StaffEnrolment,
    StaffRecord, StaffSessionRecord, StoredMessage, TileHash, TokenHash, UserRecord, WrappedDek,
    sponsors_from_text, sponsors_to_text,
};
pub use throttle::LogThrottle;
pub use traits::{
    AccountStore, AttachmentStore, CaseStore, CommitObserver, ConversationStore, DekStore, Health,
    LimitStore, LogStore, MessageStore, NoObserver, SafetyStore, SessionStore, StaffStore, Storage,
};
