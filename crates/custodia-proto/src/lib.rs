//! The wire format of the client API: JSON bodies of the HTTPS endpoints and the frames
//! of the WebSocket. Shared by the server's HTTP layer and the SDK so they cannot drift.
//!
//! Conventions: ids are UUID strings; times are Unix milliseconds (`*_ms`); errors are
//! RFC 9457 problem details ([`Problem`]).
//!
//! WebSocket (`GET /v1/ws`, `Authorization: Bearer <token>`): the client sends
//! [`ClientFrame`]s and receives [`ServerFrame`]s, one JSON object per text frame. A new
//! connection receives nothing live until it sends [`ClientFrame::Sync`] with the last
//! sequence number it holds of each conversation (everything up to it, without gaps); the
//! server then sends everything after it (for conversations not named: from the start),
//! page by page, a [`ServerFrame::Synced`], and from then on every message exactly once,
//! in order, without gaps: a live message after missed ones comes after them. If the
//! server cannot read what a connection missed, it closes with 1013 and the client
//! reconnects and syncs from what it holds. A client that wants less of a long history
//! names a later position (e.g. the conversation's `last_seq` minus what it shows) and
//! pages older messages through history.

pub mod report;
pub mod staff;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `Debug` for a request that carries a secret: only the named fields are shown, so a
/// password never reaches a log or a panic message.
macro_rules! debug_showing {
    ($ty:ident: $($field:ident),*) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

/// `POST /v1/accounts`.
#[derive(Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// 3–32 of `a-z 0-9 _ . -`.
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
}

/// An account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Id.
    pub user_id: Uuid,
    /// Name.
    pub username: String,
}

debug_showing!(RegisterRequest: username, date_of_birth);

/// `POST /v1/sessions`.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Name.
    pub username: String,
    /// Password.
    pub password: String,
    /// A label for this device, e.g. "laptop".
    #[serde(default)]
    pub device: Option<String>,
}

debug_showing!(LoginRequest: username, device);

/// A new session; the token is shown only here.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer …`.
    pub token: String,
    /// The session.
    pub session: Session,
    /// Whose.
    pub user_id: Uuid,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// A signed-in session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Id (to revoke it).
    pub id: Uuid,
    /// Device label.
    pub device: String,
    /// Created.
    pub created_at_ms: i64,
    /// Expires.
    pub expires_at_ms: i64,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// `POST /v1/conversations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreateConversation {
    /// A direct conversation with one other user (returns the existing one if any).
    Direct {
        /// Their username.
        peer: String,
    },
    /// A group owned by the caller.
    Group {
        /// Title.
        title: String,
        /// Usernames of the other first members.
        #[serde(default)]
        members: Vec<String>,
    },
}

/// A conversation as the caller sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    /// Id.
    pub id: Uuid,
    /// `direct` or `group`.
    pub kind: String,
    /// Group title.
    pub title: Option<String>,
    /// Newest sequence number.
    pub last_seq: u64,
    /// The caller's read position.
    pub read_seq: u64,
    /// Messages after the read position.
    pub unread: u64,
    /// Member count.
    pub member_count: u32,
    /// Newest message.
    pub last_message: Option<Message>,
    /// Members (only when fetching one conversation).
    #[serde(default)]
    pub members: Vec<Member>,
    /// Created.
    pub created_at_ms: i64,
}

/// A member of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// Id.
    pub user_id: Uuid,
    /// Name.
    pub username: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Read position.
    pub read_seq: u64,
}

/// `POST /v1/conversations/{id}/members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddMemberRequest {
    /// Who to add.
    pub username: String,
}

/// `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendRequest {
    /// Idempotency key chosen by the client (1–64 printable ASCII).
    pub client_id: String,
    /// Text, at most 16 KiB of UTF-8.
    pub body: String,
}

/// The server's acknowledgement of a durable send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Where.
    pub conversation_id: Uuid,
    /// The client's idempotency key.
    pub client_id: String,
    /// Assigned sequence number.
    pub seq: u64,
    /// Server id.
    pub id: Uuid,
    /// Server time of acceptance.
    pub sent_at_ms: i64,
    /// Whether this client id had been sent before (nothing new was stored).
    pub duplicate: bool,
}

/// A message. Its `Debug` leaves out the franking key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Where.
    pub conversation_id: Uuid,
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// Server id.
    pub id: Uuid,
    /// The sender's idempotency key.
    pub client_id: String,
    /// Sender.
    pub sender_id: Uuid,
    /// Server time of acceptance.
    pub sent_at_ms: i64,
    /// `ok`, `deleted`, `unreadable` or `withheld`.
    pub state: MessageState,
    /// The text when `state` is `ok`.
    pub body: Option<String>,
    /// Base64 franking key (members only): send it with the text when reporting the
    /// message, so staff see it verified as sent by its sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub franking_key: Option<String>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("conversation_id", &self.conversation_id)
            .field("seq", &self.seq)
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("sender_id", &self.sender_id)
            .field("sent_at_ms", &self.sent_at_ms)
            .field("state", &self.state)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// Whether a message has a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Has its body.
    Ok,
    /// Deleted for everyone.
    Deleted,
    /// Stored body failed authentication.
    Unreadable,
    /// Body not shown: the reader may see metadata only (staff grants of that tier).
    Withheld,
    /// Not shown: the reader and the sender blocked one another.
    Hidden,
}

/// A page of history, ascending by `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Messages.
    pub messages: Vec<Message>,
    /// Whether more exist in the paging direction.
    pub has_more: bool,
}

/// `POST /v1/conversations/{id}/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadRequest {
    /// Read up to this sequence number.
    pub seq: u64,
}

/// The read position after a read receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadPosition {
    /// Where.
    pub conversation_id: Uuid,
    /// Position.
    pub read_seq: u64,
}

/// An RFC 9457 problem detail (`application/problem+json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong here and what to fix.
    pub detail: String,
    /// Request id, for 5xx answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// A notice that staff read messages of yours: by role (never by name), why, how many
/// and when, and the read's entry in the audit log with the receipt that proves it is
/// there (`GET /v1/me/access-notices`, newest first; live as a frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessNotice {
    /// Id.
    pub id: Uuid,
    /// The conversation whose messages were read.
    pub conversation_id: Uuid,
    /// When.
    pub read_at_ms: i64,
    /// The reader's role, e.g. `moderator`.
    pub role: String,
    /// The reason code of the grant, e.g. `report_review`.
    pub reason: String,
    /// The case (report or legal request) the read was for.
    pub case_id: Uuid,
    /// How many messages were read.
    pub messages: u32,
    /// When the first of them was sent.
    pub first_sent_at_ms: i64,
    /// When the last of them was sent.
    pub last_sent_at_ms: i64,
    /// The read's entry in the audit log.
    pub log_index: u64,
    /// The signed (and witnessed) checkpoint the entry is proved against.
    pub checkpoint: String,
    /// The entry's inclusion proof in that checkpoint: base64 hashes, from the leaf up.
    pub proof: Vec<String>,
    /// Set when the notice was deferred under a non-disclosure order: until when (Unix
    /// ms). It is shown only once released.
    #[serde(default)]
    pub deferred_until_ms: Option<i64>,
    /// Set when the notice of an emergency read was held until the emergency's second
    /// review was done.
    #[serde(default)]
    pub deferred_until_review: bool,
}

/// `GET /v1/me/log-key`: what a member's client needs to find, in the public audit log,
/// every entry about them (`custodia-client chat access-history --verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLogKey {
    /// The member's tag key, base64 (32 bytes): an entry names them when one of its user
    /// tags is HMAC-SHA-256(key, the entry's salt). Theirs alone: whoever holds it can
    /// find the entries about them.
    pub key: String,
    /// The log's verifier key (a C2SP signed-note verifier key), to check checkpoints.
    pub log: String,
}

/// `DELETE /v1/conversations/{id}/messages/{seq}` answered 202: the message is removed
/// for everyone, but its stored copy is destroyed only later (a legal obligation to
/// preserve it). A 204 means it was destroyed at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionDeferred {
    /// Always true: nobody sees the message again.
    pub deleted_for_everyone: bool,
    /// Always false: the stored copy still exists.
    pub destroyed: bool,
    /// What happened, in words.
    pub detail: String,
}

/// `profile.json` of a self-export (`GET /v1/me/export`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportProfile {
    /// The account's id.
    pub user_id: Uuid,
    /// Its username.
    pub username: String,
    /// The date of birth given at registration (YYYY-MM-DD).
    pub date_of_birth: String,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
}

/// `DELETE /v1/me`: closing one's own account.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseAccount {
    /// The account's password (the bearer token alone does not close an account).
    pub password: String,
}

debug_showing!(CloseAccount:);

/// What closing an account did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountClosed {
    /// Messages of yours that are now deleted for everyone.
    pub messages_deleted: u64,
    /// Of those, how many stored copies are kept under a legal obligation to preserve
    /// them, and destroyed when it ends.
    pub messages_kept_under_hold: u64,
    /// Attachments of yours destroyed.
    pub attachments_destroyed: u64,
    /// When your username becomes free for someone else (Unix ms).
    pub name_free_from_ms: i64,
    /// What happened, in words.
    pub detail: String,
}

/// Frames a client sends on the WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start receiving: what was missed after these positions, then live events.
    Sync {
        /// Last sequence number held, per conversation.
        #[serde(default)]
        cursors: HashMap<Uuid, u64>,
        /// Messages per conversation per page of the catch-up (default 100, at most 200);
        /// the catch-up pages through everything missed.
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Send a message; answered by an [`ServerFrame::Ack`] once durable.
    Send {
        /// Where.
        conversation_id: Uuid,
        /// Idempotency key.
        client_id: String,
        /// Text.
        body: String,
    },
    /// A read receipt.
    Read {
        /// Where.
        conversation_id: Uuid,
        /// Up to which sequence number.
        seq: u64,
    },
    /// Keep-alive; answered by `pong`.
    Ping,
}

/// Frames the server sends on the WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A send is durable.
    Ack(Ack),
    /// A message (from catch-up or live).
    Message(Message),
    /// Catch-up is complete: everything after the client's positions was sent.
    Synced {
        /// Always empty: the catch-up pages through every backlog. (Kept so that clients
        /// written when a catch-up stopped at `limit` still read the frame.)
        has_more: Vec<Uuid>,
    },
    /// A member's read position moved.
    Read {
        /// Where.
        conversation_id: Uuid,
        /// Who.
        user_id: Uuid,
        /// Position.
        seq: u64,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// Where.
        conversation_id: Uuid,
        /// Which.
        seq: u64,
    },
    /// Someone joined or left.
    Membership {
        /// Where.
        conversation_id: Uuid,
        /// Who.
        user_id: Uuid,
        /// Their name.
        username: String,
        /// Joined or left.
        joined: bool,
    },
    /// A frame could not be handled; the connection stays open.
    Error {
        /// The `client_id` of the send this answers, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// The problem.
        problem: Problem,
    },
    /// Answer to `ping`.
    Pong,
    /// Staff read messages of yours (also listed at `GET /v1/me/access-notices`).
    AccessNotice(AccessNotice),
}

/// `PUT /v1/settings`: the caller's safety settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Who may start a conversation with the caller or add them to a group: `everyone`,
    /// `connections` or `nobody` (members under 18 cannot choose `everyone`).
    pub who_can_message: String,
}

/// `POST /v1/connections` and `POST /v1/blocks`: another member, by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRef {
    /// Their username.
    pub username: String,
}

/// A connection or a pending request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The other member.
    pub username: String,
    /// Both asked: connected.
    pub accepted: bool,
    /// The caller asked.
    pub asked_by_me: bool,
}

/// `POST /v1/conversations/{id}/attachments` (raw bytes): an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Id, for `GET /v1/attachments/{id}`.
    pub id: Uuid,
    /// The conversation.
    pub conversation_id: Uuid,
    /// Who uploaded it.
    pub uploader: Uuid,
    /// Size in bytes.
    pub size: u64,
    /// Content type, sniffed from the bytes.
    pub content_type: String,
    /// When.
    pub created_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carrying_a_password_never_show_it() {
        let secret = "correct horse battery staple";
        let shown = [
            format!(
                "{:?}",
                RegisterRequest {
                    username: "alice".into(),
                    password: secret.into(),
                    date_of_birth: "1990-01-01".into(),
                }
            ),
            format!(
                "{:?}",
                LoginRequest {
                    username: "alice".into(),
                    password: secret.into(),
                    device: None,
                }
            ),
            format!(
                "{:?}",
                CloseAccount {
                    password: secret.into(),
                }
            ),
        ];
        for s in &shown {
            assert!(!s.contains(secret), "{s}");
        }
        assert!(shown[1].contains("alice"), "{}", shown[1]);
    }
}
