//! The notices nodes exchange over NATS: a compact binary form, decoded strictly.
//!
//! A message travels by id only (conversation and sequence number): the receiving node
//! reads the sealed message from the shared store and opens it itself, so no message
//! text ever crosses NATS. The other events carry only ids, positions and a username.
//!
//! Layout (integers big-endian): version `1`; the sending node's id (16 bytes); the kind
//! (1 byte) and its fields; the recipients (u32 count, then 16 bytes each).

use custodia_core::{ConversationId, SessionId, UserId, Username};
use uuid::Uuid;

const VERSION: u8 = 1;
/// The most recipients one notice carries (a group's largest membership is far smaller).
const MAX_RECIPIENTS: u32 = 1_000_000;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Message `seq` of a conversation was committed.
    Message {
        /// Where.
        conversation_id: ConversationId,
        /// Which.
        seq: u64,
    },
    /// A member's read position moved.
    Read {
        /// Where.
        conversation_id: ConversationId,
        /// Who.
        user_id: UserId,
        /// Up to where.
        seq: u64,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// Where.
        conversation_id: ConversationId,
        /// Which.
        seq: u64,
    },
    /// Someone joined or left.
    Membership {
        /// Where.
        conversation_id: ConversationId,
        /// Who.
        user_id: UserId,
        /// Their name.
        username: Username,
        /// Joined or left.
        joined: bool,
    },
    /// The sending node may have dropped notices (it lost its NATS connection or fell
    /// behind): every node's live sessions catch up from storage.
    Resync,
    /// An access notice for `user_id`, stored with audit log entry `log_index`.
    AccessNotice {
        /// The member told.
        user_id: UserId,
        /// The read's log entry.
        log_index: u64,
    },
    /// A session was revoked: close its live connections.
    Disconnect {
        /// Whose.
        user_id: UserId,
        /// Which.
        session_id: SessionId,
    },
}

/// One notice: from which node, what, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The node that published it (a node ignores its own).
    pub node: Uuid,
    /// What happened.
    pub kind: Kind,
    /// Who should learn of it.
    pub recipients: Vec<UserId>,
}

/// Why bytes are not a notice.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its fields.
    #[error("truncated notice")]
    Truncated,
    /// A version this node does not know.
    #[error("unknown notice version {0}")]
    Version(u8),
    /// A kind this node does not know.
    #[error("unknown notice kind {0}")]
    Kind(u8),
    /// A field's value is not valid.
    #[error("invalid notice field: {0}")]
    Invalid(&'static str),
    /// Bytes after the last field.
    #[error("trailing bytes after the notice")]
    Trailing,
}

impl Notice {
    /// The notice's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 16 * self.recipients.len());
        out.push(VERSION);
        out.extend_from_slice(self.node.as_bytes());
        let id = |out: &mut Vec<u8>, u: &Uuid| out.extend_from_slice(u.as_bytes());
        match &self.kind {
            Kind::Message {
                conversation_id,
                seq,
            } => {
                out.push(1);
                id(&mut out, conversation_id.as_uuid());
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Kind::Read {
                conversation_id,
                user_id,
                seq,
            } => {
                out.push(2);
                id(&mut out, conversation_id.as_uuid());
                id(&mut out, user_id.as_uuid());
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Kind::Deleted {
                conversation_id,
                seq,
            } => {
                out.push(3);
                id(&mut out, conversation_id.as_uuid());
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Kind::Membership {
                conversation_id,
                user_id,
                username,
                joined,
            } => {
                out.push(4);
                id(&mut out, conversation_id.as_uuid());
                id(&mut out, user_id.as_uuid());
                out.push(u8::from(*joined));
                let name = username.as_str().as_bytes();
                // Usernames are far shorter than 256 bytes (checked on input).
                out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&name[..name.len().min(255)]);
            }
            Kind::Resync => out.push(6),
            Kind::AccessNotice { user_id, log_index } => {
                out.push(7);
                id(&mut out, user_id.as_uuid());
                out.extend_from_slice(&log_index.to_be_bytes());
            }
            Kind::Disconnect {
                user_id,
                session_id,
            } => {
                out.push(5);
                id(&mut out, user_id.as_uuid());
                id(&mut out, session_id.as_uuid());
            }
        }
        let count = u32::try_from(self.recipients.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for r in &self.recipients {
            id(&mut out, r.as_uuid());
        }
        out
    }

    /// Reads a notice, refusing anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(bytes);
        let version = r.byte()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let node = r.uuid()?;
        let kind = match r.byte()? {
            1 => Kind::Message {
                conversation_id: ConversationId::from_uuid(r.uuid()?),
                seq: r.u64()?,
            },
            2 => Kind::Read {
                conversation_id: ConversationId::from_uuid(r.uuid()?),
                user_id: UserId::from_uuid(r.uuid()?),
                seq: r.u64()?,
            },
            3 => Kind::Deleted {
                conversation_id: ConversationId::from_uuid(r.uuid()?),
                seq: r.u64()?,
            },
            4 => {
                let conversation_id = ConversationId::from_uuid(r.uuid()?);
                let user_id = UserId::from_uuid(r.uuid()?);
                let joined = match r.byte()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("joined")),
                };
                let len = usize::from(r.byte()?);
                let name = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| DecodeError::Invalid("username"))?;
                let username = Username::parse(name)
                    .ok()
                    .filter(|u| u.as_str() == name)
                    .ok_or(DecodeError::Invalid("username"))?;
                Kind::Membership {
                    conversation_id,
                    user_id,
                    username,
                    joined,
                }
            }
            5 => Kind::Disconnect {
                user_id: UserId::from_uuid(r.uuid()?),
                session_id: SessionId::from_uuid(r.uuid()?),
            },
            6 => Kind::Resync,
            7 => Kind::AccessNotice {
                user_id: UserId::from_uuid(r.uuid()?),
                log_index: r.u64()?,
            },
            other => return Err(DecodeError::Kind(other)),
        };
        let count = r.u32()?;
        if count > MAX_RECIPIENTS || (count as usize).saturating_mul(16) != r.0.len() {
            return Err(if (count as usize).saturating_mul(16) > r.0.len() {
                DecodeError::Truncated
            } else {
                DecodeError::Trailing
            });
        }
        let recipients = (0..count)
            .map(|_| r.uuid().map(UserId::from_uuid))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            node,
            kind,
            recipients,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        let b: [u8; 16] = self
            .take(16)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(Uuid::from_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u64::from_be_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Notice> {
        let c = ConversationId::new();
        let u = UserId::new();
        [
            Kind::Message {
                conversation_id: c,
                seq: 7,
            },
            Kind::Read {
                conversation_id: c,
                user_id: u,
                seq: u64::MAX,
            },
            Kind::Deleted {
                conversation_id: c,
                seq: 1,
            },
            Kind::Membership {
                conversation_id: c,
                user_id: u,
                username: Username::parse("alice").unwrap(),
                joined: true,
            },
            Kind::AccessNotice {
                user_id: u,
                log_index: 42,
            },
            Kind::Disconnect {
                user_id: u,
                session_id: SessionId::new(),
            },
            Kind::Resync,
        ]
        .into_iter()
        .map(|kind| Notice {
            node: Uuid::new_v4(),
            kind,
            recipients: vec![UserId::new(), u],
        })
        .collect()
    }

    #[test]
    fn every_kind_round_trips() {
        for n in samples() {
            assert_eq!(Notice::decode(&n.encode()).unwrap(), n);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for n in samples() {
            let bytes = n.encode();
            for len in 0..bytes.len() {
                assert!(Notice::decode(&bytes[..len]).is_err(), "prefix of {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Notice::decode(&longer), Err(DecodeError::Trailing));
        }
        let mut wrong = samples()[0].encode();
        wrong[0] = 2;
        assert_eq!(Notice::decode(&wrong), Err(DecodeError::Version(2)));
        wrong[0] = 1;
        wrong[17] = 9;
        assert_eq!(Notice::decode(&wrong), Err(DecodeError::Kind(9)));
    }

    #[test]
    fn every_single_byte_change_decodes_canonically_or_is_refused() {
        for n in samples() {
            let bytes = n.encode();
            for at in 0..bytes.len() {
                for value in 0..=u8::MAX {
                    let mut changed = bytes.clone();
                    changed[at] = value;
                    if let Ok(decoded) = Notice::decode(&changed) {
                        assert_eq!(decoded.encode(), changed, "canonical at {at}={value}");
                    }
                }
            }
        }
    }
}
