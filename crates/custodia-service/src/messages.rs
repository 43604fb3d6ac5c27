//! Sending, history, catch-up, read receipts and delete-for-everyone.

use std::collections::HashMap;
use std::sync::Arc;

use custodia_core::{ClientMsgId, ConversationId, MessageBody, MessageId, Timestamp, UserId};
use custodia_keys::{FrankingKey, KeyService, MessageContext, Purpose};
use custodia_store::{Appended, FlaggedSignal, NewMessage, SeqRange, StoredMessage};

use crate::{Event, Principal, Service, ServiceError, ServiceResult};

/// Most messages one history page or one conversation's catch-up returns.
pub const MAX_PAGE: u32 = 200;

/// What a member sees of a message.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// Where.
    pub conversation_id: ConversationId,
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// Server id.
    pub id: MessageId,
    /// The sender's idempotency key.
    pub client_id: ClientMsgId,
    /// Sender.
    pub sender_id: UserId,
    /// Server time of acceptance.
    pub sent_at: Timestamp,
    /// The body, or why there is none.
    pub content: Content,
    /// The message's franking key, for members (it lets them report the message as
    /// verifiably sent by its sender); `None` for staff and for old messages.
    pub franking_key: Option<FrankingKey>,
}

/// The body of a message as delivered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Content {
    /// The text.
    Text(MessageBody),
    /// Deleted for everyone.
    Deleted,
    /// The sealed body failed authentication (corruption or tampering).
    Unreadable,
    /// Not opened: the reader may see metadata only.
    Withheld,
    /// Not shown: the reader and the sender blocked one another.
    Hidden,
}

/// Outcome of a send.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// The message (the earlier one for a repeated client id).
    pub message: MessageView,
    /// Whether this client id had been sent before.
    pub duplicate: bool,
}

/// A page of history, ascending.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// Whether more exist beyond the page in the paging direction.
    pub has_more: bool,
}

impl Service {
    /// Sends a message. Returns once it is durable; members' live sessions get it after.
    /// Repeating a `client_id` returns the earlier message and sends nothing.
    #[tracing::instrument(skip_all, fields(user = %who.user_id, conversation = %id))]
    pub async fn send(
        &self,
        who: &Principal,
        id: ConversationId,
        client_id: ClientMsgId,
        body: MessageBody,
    ) -> ServiceResult<SendOutcome> {
        // One read serves the membership check, the blocking rules and the fan-out.
        // Membership changing while the send is in flight is ordered as if it happened
        // just after the send. In a group, members in a block with the sender are not sent
        // it live (their history shows it hidden).
        let targets = self.send_targets(who, id).await?;
        self.may_send(who, id, &targets).await?;
        let recipients = targets.deliver;
        let inner = &self.inner;
        let sent_at = inner.clock.now();
        let msg_id = MessageId::at(sent_at);
        let epoch = inner.config.epoch.epoch_of(sent_at);
        let ctx = MessageContext {
            conversation: id,
            epoch: &epoch,
            message: msg_id,
            sender: who.user_id,
            sent_at,
            seq: None,
        };
        let sealed = inner.keys.seal(ctx, body.as_str().as_bytes()).await?;
        // A text-rule signal is stored with the message, in the same commit (the outbox);
        // the signal worker opens its case afterwards, retrying until it exists.
        let signal = inner
            .signals
            .as_ref()
            .and(inner.text_rules.as_ref())
            .and_then(|rules| rules.evaluate(body.as_str()))
            .map(|s| FlaggedSignal {
                rules: s.rules,
                category: s.category,
                score: s.score,
            });
        let flagged = signal.is_some();
        let new = NewMessage {
            id: msg_id,
            conversation_id: id,
            sender_id: who.user_id,
            client_id,
            sent_at,
            epoch,
            sealed: sealed.sealed,
            franking: sealed.franking,
            signal,
        };
        match inner.store.messages.append(new).await? {
            Appended::New(stored) => {
                let mut view = view_of(&stored, Content::Text(body));
                if flagged {
                    inner.signal_wakeup.notify_one();
                }
                view.franking_key = Some(sealed.franking_key);
                inner
                    .fanout
                    .publish(recipients, Arc::new(Event::Message(view.clone())))
                    .await;
                Ok(SendOutcome {
                    message: view,
                    duplicate: false,
                })
            }
            Appended::Duplicate(stored) => Ok(SendOutcome {
                message: self.open_for(who, stored).await,
                duplicate: true,
            }),
        }
    }

    /// A page of history: after or before a sequence number, or the newest page.
    pub async fn history(
        &self,
        who: &Principal,
        id: ConversationId,
        range: Option<SeqRange>,
        limit: u32,
    ) -> ServiceResult<HistoryPage> {
        self.membership(who, id).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let range = range.unwrap_or(SeqRange::Before(u64::MAX));
        let mut stored = self
            .inner
            .store
            .messages
            .messages(id, range, limit + 1)
            .await?;
        let has_more = stored.len() > limit as usize;
        if has_more {
            match range {
                SeqRange::After(_) => drop(stored.pop()),
                SeqRange::Before(_) => drop(stored.remove(0)),
            }
        }
        let hidden = if stored.is_empty() {
            Vec::new()
        } else {
            self.inner.store.safety.blocked_with(who.user_id).await?
        };
        let mut messages = Vec::with_capacity(stored.len());
        for m in stored {
            messages.push(self.open_shown(who, m, &hidden).await);
        }
        Ok(HistoryPage { messages, has_more })
    }

    /// Everything the caller missed: for each of their conversations, its newest sequence
    /// number and the messages after the given cursor (after 0 for conversations not
    /// named), up to `limit` each.
    pub async fn catch_up(
        &self,
        who: &Principal,
        cursors: &HashMap<ConversationId, u64>,
        limit: u32,
    ) -> ServiceResult<Vec<(ConversationId, u64, HistoryPage)>> {
        let mut out = Vec::new();
        for s in self
            .inner
            .store
            .conversations
            .conversations_of(who.user_id)
            .await?
        {
            let id = s.conversation.id;
            let after = cursors.get(&id).copied().unwrap_or(0);
            let page = if s.conversation.last_seq > after {
                self.history(who, id, Some(SeqRange::After(after)), limit)
                    .await?
            } else {
                HistoryPage {
                    messages: Vec::new(),
                    has_more: false,
                }
            };
            out.push((id, s.conversation.last_seq, page));
        }
        Ok(out)
    }

    /// Moves the caller's read position and tells the other members.
    pub async fn mark_read(
        &self,
        who: &Principal,
        id: ConversationId,
        seq: u64,
    ) -> ServiceResult<u64> {
        let me = self.membership(who, id).await?;
        let pos = self
            .inner
            .store
            .conversations
            .mark_read(id, who.user_id, seq)
            .await?;
        if pos > me.read_seq {
            let event = Event::Read {
                conversation_id: id,
                user_id: who.user_id,
                seq: pos,
            };
            self.inner
                .fanout
                .publish(self.member_ids(id).await?, Arc::new(event))
                .await;
        }
        Ok(pos)
    }

    /// Deletes one of the caller's own messages for everyone: a tombstone stays in its
    /// place and nobody sees it again; the sealed body is destroyed now, or — when a
    /// preservation hold covers it — when the hold ends (the answer says which).
    pub async fn delete_message(
        &self,
        who: &Principal,
        id: ConversationId,
        seq: u64,
    ) -> ServiceResult<Deletion> {
        self.membership(who, id).await?;
        let store = &self.inner.store.messages;
        let m = store
            .message(id, seq)
            .await?
            .ok_or(ServiceError::NotFound("message"))?;
        if m.sender_id != who.user_id {
            return Err(ServiceError::Forbidden(
                "only the sender can delete a message for everyone",
            ));
        }
        if m.deleted_at.is_none() {
            store.tombstone(id, seq, self.inner.clock.now()).await?;
            let event = Event::Deleted {
                conversation_id: id,
                seq,
            };
            self.inner
                .fanout
                .publish(self.member_ids(id).await?, Arc::new(event))
                .await;
        }
        let kept = store
            .message(id, seq)
            .await?
            .is_some_and(|m| m.sealed.is_some());
        Ok(if kept {
            Deletion::Deferred
        } else {
            Deletion::Destroyed
        })
    }

    /// Opens a stored message for a member, unless its sender and the member blocked one
    /// another (one of `hidden`): then it shows as hidden, unopened.
    pub(crate) async fn open_shown(
        &self,
        who: &Principal,
        m: StoredMessage,
        hidden: &[UserId],
    ) -> MessageView {
        if m.sender_id != who.user_id && hidden.contains(&m.sender_id) {
            return view_of(&m, Content::Hidden);
        }
        self.open_for(who, m).await
    }

    /// The live event of `user`'s access notice for log entry `log_index`, when another
    /// node announced it. `None` if there is no such notice.
    pub async fn access_notice_event(
        &self,
        user: UserId,
        log_index: u64,
    ) -> ServiceResult<Option<Event>> {
        let notices = self.inner.store.cases.access_notices_of(user).await?;
        Ok(notices
            .into_iter()
            .find(|n| n.log_index == log_index)
            .map(Event::AccessNotice))
    }

    /// The caller's access notices (staff read messages of theirs), newest first.
    pub async fn access_notices(
        &self,
        who: &Principal,
    ) -> ServiceResult<Vec<custodia_store::AccessNoticeRecord>> {
        Ok(self
            .inner
            .store
            .cases
            .access_notices_of(who.user_id)
            .await?)
    }

    /// The live event of message `seq` of a conversation, opened for delivery to
    /// `reader` (a recipient connected to this node), when another node announced it by
    /// id. `None` if there is no such message.
    pub async fn message_event(
        &self,
        id: ConversationId,
        seq: u64,
        reader: UserId,
    ) -> ServiceResult<Option<Event>> {
        let Some(stored) = self.inner.store.messages.message(id, seq).await? else {
            return Ok(None);
        };
        let view = open_message(&self.inner.keys, Purpose::Delivery { reader }, stored).await;
        Ok(Some(Event::Message(view)))
    }

    /// Opens a stored message for a member.
    pub(crate) async fn open_for(&self, who: &Principal, m: StoredMessage) -> MessageView {
        open_message(
            &self.inner.keys,
            Purpose::Delivery {
                reader: who.user_id,
            },
            m,
        )
        .await
    }
}

/// What deleting a message for everyone did to its stored body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Destroyed now.
    Destroyed,
    /// Kept until a preservation hold that covers it ends, then destroyed.
    Deferred,
}

/// Opens a stored message for `purpose`. A body that fails authentication is reported as
/// unreadable (and logged), never as an error for the whole request.
pub async fn open_message(keys: &KeyService, purpose: Purpose, m: StoredMessage) -> MessageView {
    let delivery = matches!(purpose, Purpose::Delivery { .. });
    open(keys, purpose, m, delivery).await
}

/// Opens a stored message for a disclosure package under legal process: as
/// [`open_message`] for staff, but keeping the franking key, so the recipient can check that
/// the text opens the commitment stored when the message was accepted.
pub async fn open_for_disclosure(
    keys: &KeyService,
    purpose: Purpose,
    m: StoredMessage,
) -> MessageView {
    open(keys, purpose, m, true).await
}

async fn open(
    keys: &KeyService,
    purpose: Purpose,
    m: StoredMessage,
    keep_key: bool,
) -> MessageView {
    let delivery = matches!(purpose, Purpose::Delivery { .. });
    // A message deleted for everyone never reaches a member again, even while a hold
    // keeps its body for legal process (staff reading under a grant still see it).
    let Some(sealed) = m
        .sealed
        .as_ref()
        .filter(|_| !(delivery && m.deleted_at.is_some()))
    else {
        return view_of(&m, Content::Deleted);
    };
    let ctx = context_of(&m);
    let opened = keys.open(purpose, ctx, sealed).await;
    let (content, franking_key) = match opened {
        Ok(o) => {
            let text = String::from_utf8(o.body.to_vec())
                .ok()
                .and_then(|t| MessageBody::parse(t).ok());
            match text {
                Some(t) => (Content::Text(t), o.franking_key),
                None => (Content::Unreadable, None),
            }
        }
        Err(e) => {
            tracing::warn!(conversation = %m.conversation_id, seq = m.seq, error = %e, "message cannot be opened");
            (Content::Unreadable, None)
        }
    };
    let mut view = view_of(&m, content);
    // Only members get the franking key (it is theirs to disclose when reporting), and a
    // disclosure package, whose recipient checks the text against the commitment with it.
    view.franking_key = franking_key.filter(|_| keep_key);
    view
}

/// What a stored message's seal and franking are bound to.
pub fn context_of(m: &StoredMessage) -> MessageContext<'_> {
    MessageContext {
        conversation: m.conversation_id,
        epoch: &m.epoch,
        message: m.id,
        sender: m.sender_id,
        sent_at: m.sent_at,
        seq: Some(m.seq),
    }
}

/// What a message shows without opening it: everything but the body.
pub fn metadata_of(m: &StoredMessage) -> MessageView {
    view_of(
        m,
        if m.sealed.is_some() && m.deleted_at.is_none() {
            Content::Withheld
        } else {
            Content::Deleted
        },
    )
}

fn view_of(m: &StoredMessage, content: Content) -> MessageView {
    MessageView {
        conversation_id: m.conversation_id,
        seq: m.seq,
        id: m.id,
        client_id: m.client_id.clone(),
        sender_id: m.sender_id,
        sent_at: m.sent_at,
        content,
        franking_key: None,
    }
}

/// One live connection's delivery position per conversation, so it sees every message
/// exactly once and in order, whether it arrives by catch-up, by fan-out, or both.
#[derive(Debug, Default)]
pub struct DeliveryCursor {
    delivered: HashMap<ConversationId, u64>,
}

/// What to do with a message that arrived by fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Next in line: deliver it.
    Deliver,
    /// Already delivered: drop it.
    Duplicate,
    /// Messages after this position were missed: fetch them from history first.
    Gap {
        /// The last position delivered.
        after: u64,
    },
}

impl DeliveryCursor {
    /// Decides what to do with message `seq` of `conversation`.
    pub fn admit(&self, conversation: ConversationId, seq: u64) -> Admit {
        match self.delivered.get(&conversation) {
            Some(&last) if seq <= last => Admit::Duplicate,
            Some(&last) if seq > last + 1 => Admit::Gap { after: last },
            _ => Admit::Deliver,
        }
    }

    /// The last position delivered in each conversation.
    pub fn positions(&self) -> HashMap<ConversationId, u64> {
        self.delivered.clone()
    }

    /// The last position delivered in `conversation`, if any.
    pub fn position(&self, conversation: ConversationId) -> Option<u64> {
        self.delivered.get(&conversation).copied()
    }

    /// Records that everything up to `seq` of `conversation` was delivered.
    pub fn advance(&mut self, conversation: ConversationId, seq: u64) {
        let e = self.delivered.entry(conversation).or_insert(0);
        *e = (*e).max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_delivers_once_in_order_and_detects_gaps() {
        let c1 = ConversationId::new();
        let mut cur = DeliveryCursor::default();
        assert_eq!(
            cur.admit(c1, 7),
            Admit::Deliver,
            "unknown conversations start where they are"
        );
        cur.advance(c1, 7);
        assert_eq!(cur.admit(c1, 7), Admit::Duplicate);
        assert_eq!(cur.admit(c1, 3), Admit::Duplicate);
        assert_eq!(cur.admit(c1, 8), Admit::Deliver);
        assert_eq!(cur.admit(c1, 10), Admit::Gap { after: 7 });
    }
}
