//! Teen protections, connections, blocking and send limits.
//!
//! Who may start a conversation with whom (or add whom to a group) follows the age bands
//! and "who can message me" settings of `custodia_core::safety`. A refusal because of the
//! other member's age or settings reads the same whatever the reason, so it does not tell
//! a stranger a member's age. A blocked member cannot find, message or add the member who
//! blocked them: to them the blocker looks like nobody.

use std::time::Duration;

use custodia_core::{AgeBand, BirthDate, ConversationId, UserId, Username, WhoCanMessage};
use custodia_store::ConnectionRecord;

use crate::{Principal, Service, ServiceError, ServiceResult};

/// The one refusal for "their age or settings do not let you": it names neither.
const NOT_FOR_YOU: &str = "this member cannot be messaged or added by you";
/// Accounts younger than this send under the stricter new-account limit.
const NEW_ACCOUNT: Duration = Duration::from_secs(24 * 3600);
/// An adult's messages to a minor in a direct conversation younger than this count as
/// first contact.
const FIRST_CONTACT: Duration = Duration::from_secs(24 * 3600);

/// Whom a send goes to.
#[derive(Debug)]
pub(crate) struct SendTargets {
    /// Members to deliver to (the sender included; those in a block with them not).
    pub(crate) deliver: Vec<UserId>,
    /// How many members the conversation has.
    pub(crate) members: usize,
    /// Whether any member is in a block with the sender.
    pub(crate) blocked: bool,
}

/// A connection as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionView {
    /// The other member.
    pub user: Username,
    /// Connected (both asked), or only requested.
    pub accepted: bool,
    /// Whether the caller asked (else the other did).
    pub asked_by_me: bool,
}

impl Service {
    fn band(&self, birth: &BirthDate) -> AgeBand {
        AgeBand::of(birth, self.today())
    }

    /// A member's effective "who can message me".
    pub async fn who_can_message(&self, who: &Principal) -> ServiceResult<WhoCanMessage> {
        let chosen = self.inner.store.safety.who_can_message(who.user_id).await?;
        Ok(self.band(&who.birth_date).who_can_message(chosen))
    }

    /// Sets "who can message me"; 16–17-year-olds cannot choose everyone, and under-16s
    /// have nothing to choose.
    pub async fn set_who_can_message(
        &self,
        who: &Principal,
        setting: WhoCanMessage,
    ) -> ServiceResult<WhoCanMessage> {
        let band = self.band(&who.birth_date);
        if !band.may_choose(setting) {
            return Err(ServiceError::Rejected(if band.may_converse() {
                "members under 18 can allow their connections or nobody, not everyone"
            } else {
                "direct messages and groups are not available to members under 16"
            }));
        }
        self.inner
            .store
            .safety
            .set_who_can_message(who.user_id, setting)
            .await?;
        Ok(band.who_can_message(Some(setting)))
    }

    /// Asks `peer` to connect, or accepts their request.
    pub async fn connect(&self, who: &Principal, peer: &Username) -> ServiceResult<ConnectionView> {
        let peer_id = self.findable(who, peer).await?;
        if peer_id == who.user_id {
            return Err(ServiceError::Rejected("you cannot connect with yourself"));
        }
        if self
            .inner
            .store
            .safety
            .is_blocked(who.user_id, peer_id)
            .await?
        {
            return Err(ServiceError::Rejected(
                "you blocked this member; unblock them first",
            ));
        }
        let r = self
            .inner
            .store
            .safety
            .request_connection(who.user_id, peer_id, self.inner.clock.now())
            .await?;
        Ok(self.connection_view(who.user_id, &r, peer.clone()))
    }

    /// Ends a connection, or withdraws or refuses a request.
    pub async fn disconnect(&self, who: &Principal, peer: &Username) -> ServiceResult<()> {
        let peer_id = self.findable(who, peer).await?;
        if !self
            .inner
            .store
            .safety
            .remove_connection(who.user_id, peer_id)
            .await?
        {
            return Err(ServiceError::NotFound("connection"));
        }
        Ok(())
    }

    /// The caller's connections and requests.
    pub async fn connections(&self, who: &Principal) -> ServiceResult<Vec<ConnectionView>> {
        let all = self.inner.store.safety.connections_of(who.user_id).await?;
        let mut out = Vec::with_capacity(all.len());
        for r in all {
            let other = if r.requested_by == who.user_id {
                r.other
            } else {
                r.requested_by
            };
            if let Some(u) = self.inner.store.accounts.user_by_id(other).await? {
                out.push(self.connection_view(who.user_id, &r, u.username));
            }
        }
        Ok(out)
    }

    fn connection_view(&self, me: UserId, r: &ConnectionRecord, user: Username) -> ConnectionView {
        ConnectionView {
            user,
            accepted: r.accepted,
            asked_by_me: r.requested_by == me,
        }
    }

    /// Blocks a member: they can no longer find, message or add the caller, and any
    /// connection between them ends.
    pub async fn block(&self, who: &Principal, peer: &Username) -> ServiceResult<()> {
        let peer_id = self.user_named(peer).await?;
        if peer_id == who.user_id {
            return Err(ServiceError::Rejected("you cannot block yourself"));
        }
        self.inner
            .store
            .safety
            .block(who.user_id, peer_id, self.inner.clock.now())
            .await?;
        Ok(())
    }

    /// Lifts a block.
    pub async fn unblock(&self, who: &Principal, peer: &Username) -> ServiceResult<()> {
        let peer_id = self.user_named(peer).await?;
        if !self
            .inner
            .store
            .safety
            .unblock(who.user_id, peer_id)
            .await?
        {
            return Err(ServiceError::NotFound("block"));
        }
        Ok(())
    }

    /// The members the caller blocked.
    pub async fn blocked(&self, who: &Principal) -> ServiceResult<Vec<Username>> {
        let ids = self.inner.store.safety.blocked_by(who.user_id).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(u) = self.inner.store.accounts.user_by_id(id).await? {
                out.push(u.username);
            }
        }
        Ok(out)
    }

    /// The id of `peer`, unless `peer` blocked the caller (then they do not exist for them).
    pub(crate) async fn findable(&self, who: &Principal, peer: &Username) -> ServiceResult<UserId> {
        let id = self.user_named(peer).await?;
        if self.inner.store.safety.is_blocked(id, who.user_id).await? {
            return Err(ServiceError::NotFound("user"));
        }
        Ok(id)
    }

    /// Checks that the caller may start a conversation with `peer` or add them to a group.
    pub(crate) async fn may_reach(&self, who: &Principal, peer: UserId) -> ServiceResult<()> {
        if !self.band(&who.birth_date).may_converse() {
            return Err(ServiceError::Forbidden(
                "direct messages and groups are not available to members under 16",
            ));
        }
        let safety = &self.inner.store.safety;
        if safety.is_blocked(peer, who.user_id).await? {
            return Err(ServiceError::NotFound("user"));
        }
        if safety.is_blocked(who.user_id, peer).await? {
            return Err(ServiceError::Rejected(
                "you blocked this member; unblock them first",
            ));
        }
        let record = self
            .inner
            .store
            .accounts
            .user_by_id(peer)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let band = self.band(&record.birth_date);
        let connected = || async {
            Ok::<bool, ServiceError>(
                safety
                    .connection(who.user_id, peer)
                    .await?
                    .is_some_and(|c| c.accepted),
            )
        };
        let allowed = match band.who_can_message(safety.who_can_message(peer).await?) {
            WhoCanMessage::Nobody => false,
            WhoCanMessage::Connections => connected().await?,
            _ => true,
        };
        // Adults never reach an unconnected minor, whatever the settings say.
        let adult_to_minor =
            !self.band(&who.birth_date).is_minor() && band.is_minor() && !connected().await?;
        if !allowed || adult_to_minor {
            return Err(ServiceError::Forbidden(NOT_FOR_YOU));
        }
        Ok(())
    }

    /// The members of a conversation the caller sends to, split into those to deliver to
    /// and whether any of them is in a block with the caller; `NotFound` unless the caller
    /// is a member. One read.
    pub(crate) async fn send_targets(
        &self,
        who: &Principal,
        conversation: ConversationId,
    ) -> ServiceResult<SendTargets> {
        let all = self
            .inner
            .store
            .conversations
            .recipients(conversation, who.user_id)
            .await?;
        if !all.iter().any(|(u, _)| *u == who.user_id) {
            return Err(ServiceError::NotFound("conversation"));
        }
        let members = all.len();
        let blocked = all.iter().any(|(_, b)| *b);
        Ok(SendTargets {
            deliver: all
                .into_iter()
                .filter(|(_, b)| !b)
                .map(|(u, _)| u)
                .collect(),
            members,
            blocked,
        })
    }

    /// Checks a send: the sender's band and send limits; in a two-member conversation
    /// (direct, or a two-person group) that neither blocked the other, and the
    /// first-contact limit from adults to minors.
    pub(crate) async fn may_send(
        &self,
        who: &Principal,
        conversation: ConversationId,
        targets: &SendTargets,
    ) -> ServiceResult<()> {
        let inner = &self.inner;
        let now = inner.clock.now();
        if !self.band(&who.birth_date).may_converse() {
            return Err(ServiceError::Forbidden(
                "direct messages and groups are not available to members under 16",
            ));
        }
        let limiter = if now.since(who.created_at) < NEW_ACCOUNT {
            &inner.sends_new_account
        } else {
            &inner.sends_per_account
        };
        let shared = inner.shared_limits.as_deref();
        limiter
            .check(&who.user_id.to_string(), shared, &inner.limits_degraded)
            .await?;
        if targets.members != 2 {
            return Ok(());
        }
        if targets.blocked {
            return Err(ServiceError::Forbidden("you cannot message this member"));
        }
        let Some(&peer) = targets.deliver.iter().find(|m| **m != who.user_id) else {
            return Ok(());
        };
        if !self.band(&who.birth_date).is_minor() {
            let peer_birth = self.birth_date(peer).await?;
            if self.band(&peer_birth).is_minor() {
                let started = inner
                    .store
                    .conversations
                    .conversation(conversation)
                    .await?
                    .map_or(now, |c| c.created_at);
                if now.since(started) < FIRST_CONTACT {
                    inner
                        .sends_first_contact
                        .check(
                            &format!("{}:{peer}", who.user_id),
                            shared,
                            &inner.limits_degraded,
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// A member's date of birth (it never changes, so it is cached).
    async fn birth_date(&self, user: UserId) -> ServiceResult<BirthDate> {
        if let Some(b) = self
            .inner
            .births
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
        {
            return Ok(*b);
        }
        let record = self
            .inner
            .store
            .accounts
            .user_by_id(user)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        self.inner
            .births
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(user, record.birth_date);
        Ok(record.birth_date)
    }
}
