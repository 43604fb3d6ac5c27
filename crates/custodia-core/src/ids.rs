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
            /// A fresh, time-ordered identifier (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
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
