//! Direct conversations, groups and membership.

use std::sync::Arc;

use custodia_core::{
    ConversationId, ConversationKind, GroupTitle, MemberRole, Timestamp, UserId, Username,
};
use custodia_store::{AddMember, ConversationRecord, MemberRecord, NewConversation, StoreError};

use crate::{Event, MessageView, Principal, Service, ServiceError, ServiceResult};

/// A conversation as one member sees it.
#[derive(Debug, Clone)]
pub struct ConversationView {
    /// Id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
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
    /// The newest message, if any.
    pub last_message: Option<MessageView>,
    /// Members, when asked for one conversation (empty in lists).
    pub members: Vec<MemberView>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A member as other members see them.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Who.
    pub user_id: UserId,
    /// Name.
    pub username: Username,
    /// Role.
    pub role: MemberRole,
    /// Read position.
    pub read_seq: u64,
}

impl From<MemberRecord> for MemberView {
    fn from(m: MemberRecord) -> Self {
        Self {
            user_id: m.user_id,
            username: m.username,
            role: m.role,
            read_seq: m.read_seq,
        }
    }
}

impl Service {
    /// The caller's membership of a conversation. Not a member and no such conversation
    /// are the same answer, so nobody learns what exists.
    pub(crate) async fn membership(
        &self,
        who: &Principal,
        id: ConversationId,
    ) -> ServiceResult<MemberRecord> {
        self.inner
            .store
            .conversations
            .member(id, who.user_id)
            .await?
            .ok_or(ServiceError::NotFound("conversation"))
    }

    pub(crate) async fn user_named(&self, name: &Username) -> ServiceResult<UserId> {
        Ok(self
            .inner
            .store
            .accounts
            .user_by_name(name)
            .await?
            .filter(|u| u.closed_at.is_none())
            .ok_or(ServiceError::NotFound("user"))?
            .id)
    }

    /// Opens (or returns the existing) direct conversation with `peer`. `true` if new.
    pub async fn open_direct(
        &self,
        who: &Principal,
        peer: &Username,
    ) -> ServiceResult<(ConversationView, bool)> {
        let peer_id = self.findable(who, peer).await?;
        if peer_id == who.user_id {
            return Err(ServiceError::Rejected(
                "a direct conversation needs another person",
            ));
        }
        let store = &self.inner.store.conversations;
        if let Some(id) = store.direct_between(who.user_id, peer_id).await? {
            return Ok((self.conversation(who, id).await?, false));
        }
        self.may_reach(who, peer_id).await?;
        let id = ConversationId::at(self.inner.clock.now());
        let new = NewConversation {
            id,
            kind: ConversationKind::Direct,
            title: None,
            created_by: who.user_id,
            created_at: self.inner.clock.now(),
            members: vec![
                (who.user_id, MemberRole::Member),
                (peer_id, MemberRole::Member),
            ],
        };
        match store.create_conversation(new).await {
            Ok(()) => Ok((self.conversation(who, id).await?, true)),
            // The peer opened it at the same moment: theirs stands.
            Err(StoreError::Conflict) => {
                let id = store.direct_between(who.user_id, peer_id).await?.ok_or(
                    ServiceError::Internal("direct pair conflict without a conversation".into()),
                )?;
                Ok((self.conversation(who, id).await?, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a group owned by the caller with the named members.
    pub async fn create_group(
        &self,
        who: &Principal,
        title: GroupTitle,
        members: &[Username],
    ) -> ServiceResult<ConversationView> {
        let max = self.inner.config.max_group_members as usize;
        let mut ids = vec![(who.user_id, MemberRole::Owner)];
        let mut added = Vec::new();
        for name in members {
            let id = self.findable(who, name).await?;
            if !ids.iter().any(|(u, _)| *u == id) {
                self.may_reach(who, id).await?;
                ids.push((id, MemberRole::Member));
                added.push((id, name.clone()));
            }
        }
        if ids.len() > max {
            return Err(ServiceError::Rejected("too many members for one group"));
        }
        let id = ConversationId::at(self.inner.clock.now());
        let recipients: Vec<UserId> = ids.iter().map(|(u, _)| *u).collect();
        let new = NewConversation {
            id,
            kind: ConversationKind::Group,
            title: Some(title.as_str().to_owned()),
            created_by: who.user_id,
            created_at: self.inner.clock.now(),
            members: ids,
        };
        self.inner
            .store
            .conversations
            .create_conversation(new)
            .await?;
        // Everyone's live sessions learn who is in the new group (and the added members
        // that they were added), as for a member added later.
        for (user_id, username) in added {
            let event = Event::Membership {
                conversation_id: id,
                user_id,
                username,
                joined: true,
            };
            self.inner
                .fanout
                .publish(recipients.clone(), Arc::new(event))
                .await;
        }
        self.conversation(who, id).await
    }

    /// One conversation with its members.
    pub async fn conversation(
        &self,
        who: &Principal,
        id: ConversationId,
    ) -> ServiceResult<ConversationView> {
        let me = self.membership(who, id).await?;
        let store = &self.inner.store.conversations;
        let record = store
            .conversation(id)
            .await?
            .ok_or(ServiceError::NotFound("conversation"))?;
        let members: Vec<MemberView> = store
            .members(id)
            .await?
            .into_iter()
            .map(MemberView::from)
            .collect();
        let last = match record.last_seq {
            0 => None,
            seq => match self.inner.store.messages.message(id, seq).await? {
                Some(m) => {
                    let hidden = self.inner.store.safety.blocked_with(who.user_id).await?;
                    Some(self.open_shown(who, m, &hidden).await)
                }
                None => None,
            },
        };
        let member_count = u32::try_from(members.len()).unwrap_or(u32::MAX);
        Ok(view(record, me.read_seq, member_count, last, members))
    }

    /// The caller's conversations, most recently active first, with unread counts and the
    /// newest message.
    pub async fn conversations(&self, who: &Principal) -> ServiceResult<Vec<ConversationView>> {
        let all = self
            .inner
            .store
            .conversations
            .conversations_of(who.user_id)
            .await?;
        let hidden = self.inner.store.safety.blocked_with(who.user_id).await?;
        let mut out = Vec::with_capacity(all.len());
        for s in all {
            let last = match s.last_message {
                Some(m) => Some(self.open_shown(who, m, &hidden).await),
                None => None,
            };
            out.push(view(
                s.conversation,
                s.read_seq,
                s.member_count,
                last,
                Vec::new(),
            ));
        }
        Ok(out)
    }

    /// Adds `user` to a group. Owners and admins only.
    pub async fn add_member(
        &self,
        who: &Principal,
        id: ConversationId,
        user: &Username,
    ) -> ServiceResult<()> {
        let me = self.membership(who, id).await?;
        let record = self.group(id).await?;
        if !me.role.manages_members() {
            return Err(ServiceError::Forbidden(
                "only the group's owner and admins can add members",
            ));
        }
        let target = self.findable(who, user).await?;
        self.may_reach(who, target).await?;
        let now = self.inner.clock.now();
        let max = self.inner.config.max_group_members;
        match self
            .inner
            .store
            .conversations
            .add_member(record.id, target, MemberRole::Member, now, max)
            .await?
        {
            AddMember::Added => {
                self.announce_membership(id, target, user.clone(), true, None)
                    .await?;
                Ok(())
            }
            AddMember::AlreadyMember => Err(ServiceError::Conflict("already a member")),
            AddMember::Full => Err(ServiceError::Rejected("the group is full")),
        }
    }

    /// Removes `user` from a group; removing yourself is leaving. Owners remove anyone,
    /// admins remove ordinary members.
    pub async fn remove_member(
        &self,
        who: &Principal,
        id: ConversationId,
        user: &Username,
    ) -> ServiceResult<()> {
        let me = self.membership(who, id).await?;
        self.group(id).await?;
        let target = self.user_named(user).await?;
        if target != who.user_id {
            let them = self
                .inner
                .store
                .conversations
                .member(id, target)
                .await?
                .ok_or(ServiceError::NotFound("member"))?;
            let allowed = me.role == MemberRole::Owner
                || (me.role.manages_members() && them.role == MemberRole::Member);
            if !allowed {
                return Err(ServiceError::Forbidden(
                    "only the owner, or an admin for ordinary members, can remove someone",
                ));
            }
        }
        if !self
            .inner
            .store
            .conversations
            .remove_member(id, target)
            .await?
        {
            return Err(ServiceError::NotFound("member"));
        }
        self.announce_membership(id, target, user.clone(), false, Some(target))
            .await
    }

    async fn group(&self, id: ConversationId) -> ServiceResult<ConversationRecord> {
        let record = self
            .inner
            .store
            .conversations
            .conversation(id)
            .await?
            .ok_or(ServiceError::NotFound("conversation"))?;
        if record.kind != ConversationKind::Group {
            return Err(ServiceError::Rejected(
                "a direct conversation always has exactly two members",
            ));
        }
        Ok(record)
    }

    async fn announce_membership(
        &self,
        id: ConversationId,
        user_id: UserId,
        username: Username,
        joined: bool,
        also: Option<UserId>,
    ) -> ServiceResult<()> {
        let mut recipients = self.member_ids(id).await?;
        recipients.extend(also);
        let event = Event::Membership {
            conversation_id: id,
            user_id,
            username,
            joined,
        };
        self.inner.fanout.publish(recipients, Arc::new(event)).await;
        Ok(())
    }

    pub(crate) async fn member_ids(&self, id: ConversationId) -> ServiceResult<Vec<UserId>> {
        Ok(self
            .inner
            .store
            .conversations
            .members(id)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect())
    }
}

fn view(
    c: ConversationRecord,
    read_seq: u64,
    member_count: u32,
    last_message: Option<MessageView>,
    members: Vec<MemberView>,
) -> ConversationView {
    ConversationView {
        id: c.id,
        kind: c.kind,
        title: c.title,
        last_seq: c.last_seq,
        read_seq,
        unread: c.last_seq.saturating_sub(read_seq),
        member_count,
        last_message,
        members,
        created_at: c.created_at,
    }
}
