//! Domain values into wire types.

use custodia_proto as wire;
use custodia_service::{
    Content, ConversationView, Event, MemberView, MessageView, SendOutcome, SessionInfo,
};

pub(crate) fn message(m: &MessageView) -> wire::Message {
    let (state, body) = match &m.content {
        Content::Text(b) => (wire::MessageState::Ok, Some(b.as_str().to_owned())),
        Content::Deleted => (wire::MessageState::Deleted, None),
        Content::Withheld => (wire::MessageState::Withheld, None),
        Content::Hidden => (wire::MessageState::Hidden, None),
        _ => (wire::MessageState::Unreadable, None),
    };
    wire::Message {
        conversation_id: *m.conversation_id.as_uuid(),
        seq: m.seq,
        id: *m.id.as_uuid(),
        client_id: m.client_id.as_str().to_owned(),
        sender_id: *m.sender_id.as_uuid(),
        sent_at_ms: m.sent_at.as_millis(),
        state,
        body,
        franking_key: m.franking_key.as_ref().map(|k| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(k.as_bytes())
        }),
    }
}

pub(crate) fn ack(o: &SendOutcome) -> wire::Ack {
    let m = &o.message;
    wire::Ack {
        conversation_id: *m.conversation_id.as_uuid(),
        client_id: m.client_id.as_str().to_owned(),
        seq: m.seq,
        id: *m.id.as_uuid(),
        sent_at_ms: m.sent_at.as_millis(),
        duplicate: o.duplicate,
    }
}

pub(crate) fn conversation(c: &ConversationView) -> wire::Conversation {
    wire::Conversation {
        id: *c.id.as_uuid(),
        kind: c.kind.as_str().to_owned(),
        title: c.title.clone(),
        last_seq: c.last_seq,
        read_seq: c.read_seq,
        unread: c.unread,
        member_count: c.member_count,
        last_message: c.last_message.as_ref().map(message),
        members: c.members.iter().map(member).collect(),
        created_at_ms: c.created_at.as_millis(),
    }
}

fn member(m: &MemberView) -> wire::Member {
    wire::Member {
        user_id: *m.user_id.as_uuid(),
        username: m.username.as_str().to_owned(),
        role: m.role.as_str().to_owned(),
        read_seq: m.read_seq,
    }
}

pub(crate) fn session(s: &SessionInfo) -> wire::Session {
    wire::Session {
        id: *s.id.as_uuid(),
        device: s.device.clone(),
        created_at_ms: s.created_at.as_millis(),
        expires_at_ms: s.expires_at.as_millis(),
        current: s.current,
    }
}

/// An access notice as the member sees it.
pub(crate) fn access_notice(n: &custodia_store::AccessNoticeRecord) -> wire::AccessNotice {
    use base64::Engine;
    wire::AccessNotice {
        id: *n.id.as_uuid(),
        conversation_id: *n.conversation_id.as_uuid(),
        read_at_ms: n.read_at.as_millis(),
        role: n.role.as_str().to_owned(),
        reason: n.reason.as_str().to_owned(),
        case_id: *n.case_id.as_uuid(),
        messages: n.messages,
        first_sent_at_ms: n.span.0.as_millis(),
        last_sent_at_ms: n.span.1.as_millis(),
        log_index: n.log_index,
        checkpoint: n.checkpoint.clone(),
        proof: n
            .proof
            .iter()
            .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
            .collect(),
        deferred_until_ms: n.deferred_until.map(|t| t.as_millis()),
        deferred_until_review: n.deferred_review.is_some(),
    }
}

/// The frame for a live event; `None` for events this API does not show.
pub(crate) fn event(e: &Event) -> Option<wire::ServerFrame> {
    Some(match e {
        Event::Message(m) => wire::ServerFrame::Message(message(m)),
        Event::Read {
            conversation_id,
            user_id,
            seq,
        } => wire::ServerFrame::Read {
            conversation_id: *conversation_id.as_uuid(),
            user_id: *user_id.as_uuid(),
            seq: *seq,
        },
        Event::Deleted {
            conversation_id,
            seq,
        } => wire::ServerFrame::Deleted {
            conversation_id: *conversation_id.as_uuid(),
            seq: *seq,
        },
        Event::Membership {
            conversation_id,
            user_id,
            username,
            joined,
        } => wire::ServerFrame::Membership {
            conversation_id: *conversation_id.as_uuid(),
            user_id: *user_id.as_uuid(),
            username: username.as_str().to_owned(),
            joined: *joined,
        },
        Event::AccessNotice(n) => wire::ServerFrame::AccessNotice(access_notice(n)),
        _ => return None,
    })
}
