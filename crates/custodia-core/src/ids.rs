//! Opaque identifiers. Each is a UUID behind a newtype so the compiler keeps them apart.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::ValidationError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random identifier (UUIDv4). Reads no clock.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            /// A fresh identifier ordered by `now` (UUIDv7: the time from the caller's
            /// injected [`crate::Clock`], then random bits), so ids made later sort later
            /// and stay close in an index.
            pub fn at(now: crate::Timestamp) -> Self {
                let ms = u64::try_from(now.as_millis()).unwrap_or(0);
                let ts = uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    ms / 1000,
                    u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000,
                );
                Self(Uuid::new_v7(ts))
            }
            /// Wraps an existing UUID (e.g. read back from storage).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// The 16 bytes of the UUID, for binding into associated data.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| ValidationError::Malformed { field: $what, hint: "a UUID" })
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId, "user id"
);
uuid_id!(
    /// A direct conversation or a group.
    ConversationId, "conversation id"
);
uuid_id!(
    /// A message, assigned by the server before sealing.
    MessageId, "message id"
);
uuid_id!(
    /// A signed-in session (one device).
    SessionId, "session id"
);
uuid_id!(
    /// One deployment of custodia; bound into every sealed body so ciphertext cannot
    /// be moved between deployments.
    DeploymentId, "deployment id"
);
uuid_id!(
    /// A staff member (trust & safety, legal, audit, administration); never a user.
    StaffId, "staff id"
);
uuid_id!(
    /// A case: opened by a user report or a legal request.
    CaseId, "case id"
);
uuid_id!(
    /// An access request, and the grant it becomes when approved.
    RequestId, "request id"
);
uuid_id!(
    /// A proposed change to the staff, waiting for a second person.
    StaffChangeId, "staff change id"
);
uuid_id!(
    /// An uploaded file.
    AttachmentId, "attachment id"
);
uuid_id!(
    /// A legal request received from an agency (its intake record).
    LegalRequestId, "legal request id"
);
uuid_id!(
    /// A preservation hold on an account's conversations.
    HoldId, "hold id"
);
uuid_id!(
    /// A notice to a member that staff read their messages.
    AccessNoticeId, "access notice id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn ids_at_a_time_carry_that_time_and_sort_by_it() {
        let t = Timestamp::from_millis(1_795_435_200_123);
        let a = UserId::at(t);
        let (secs, nanos) = a.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!(
            (secs, nanos),
            (1_795_435_200, 123_000_000),
            "the injected time"
        );
        assert_eq!(a.as_uuid().get_version_num(), 7);
        let later = UserId::at(t.plus(std::time::Duration::from_millis(1)));
        assert!(later > a, "a later time sorts later");
        assert_ne!(UserId::at(t), a, "random bits after the time");
        assert_eq!(
            UserId::new().as_uuid().get_version_num(),
            4,
            "no clock read"
        );
    }
}
