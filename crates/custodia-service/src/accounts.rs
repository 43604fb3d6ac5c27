//! Accounts and sessions.

use std::fmt;
use std::net::IpAddr;

use custodia_core::{AgeBand, BirthDate, Password, SessionId, Timestamp, UserId, Username};
use custodia_store::{SessionRecord, UserRecord};
use zeroize::Zeroizing;

use crate::credentials::{hash_password, hash_token, new_token, verify_password};
use crate::{Event, Service, ServiceError, ServiceResult};
use std::sync::Arc;

const TOKEN_PREFIX: &str = "cst_";
/// How a closed account's name reads once it is freed; no one registers such a name.
const CLOSED_NAME_PREFIX: &str = "closed.";

/// An authenticated user session.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who.
    pub user_id: UserId,
    /// Their name.
    pub username: Username,
    /// Which session (device).
    pub session_id: SessionId,
    /// Their date of birth (teen protections).
    pub birth_date: BirthDate,
    /// When their account was created (new-account limits).
    pub created_at: Timestamp,
}

/// A fresh session: the bearer token is shown once and never stored.
pub struct NewSession {
    /// The bearer token.
    pub token: Zeroizing<String>,
    /// The session.
    pub session: SessionInfo,
    /// Whose.
    pub user_id: UserId,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// A session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Id.
    pub id: SessionId,
    /// Device label.
    pub device: String,
    /// Created.
    pub created_at: Timestamp,
    /// Expires.
    pub expires_at: Timestamp,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl Service {
    /// Creates an account. Sign-ups are limited per client address (across nodes), checked
    /// before the password is hashed.
    pub async fn register(
        &self,
        username: Username,
        password: Password,
        birth_date: BirthDate,
        from: IpAddr,
    ) -> ServiceResult<UserId> {
        self.inner
            .signups_by_address
            .check(&from.to_string())
            .await?;
        if username.as_str().starts_with(CLOSED_NAME_PREFIX) {
            return Err(ServiceError::Rejected(
                "names beginning with `closed.` are kept for closed accounts: choose another",
            ));
        }
        if AgeBand::of(&birth_date, self.today()) == AgeBand::Child {
            return Err(ServiceError::Rejected(
                "you must be at least 13 years old to use custodia",
            ));
        }
        let hash = hash_password(password).await?;
        let id = UserId::at(self.inner.clock.now());
        let user = UserRecord {
            id,
            username,
            password_hash: hash,
            birth_date,
            created_at: self.inner.clock.now(),
            closed_at: None,
        };
        match self.inner.store.accounts.create_user(user).await {
            Ok(()) => Ok(id),
            Err(custodia_store::StoreError::Conflict) => {
                Err(ServiceError::Conflict("that username is taken"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Signs in. Rate limited per account and per client address; the error never says
    /// whether the account exists.
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        device: &str,
        from: IpAddr,
    ) -> ServiceResult<NewSession> {
        let inner = &self.inner;
        let account_key = username.trim().to_ascii_lowercase();
        // One address spends its own budget on an account; only many addresses together
        // reach the account's larger one.
        inner.login_by_address.check(&from.to_string()).await?;
        inner
            .login_by_account
            .check(&format!("{account_key} {from}"))
            .await?;
        inner.login_by_account_total.check(&account_key).await?;
        let user = match Username::parse(username) {
            Ok(name) => inner.store.accounts.user_by_name(&name).await?,
            Err(_) => None,
        };
        // A closed account is checked against the decoy, as an unknown one is.
        let user = user.filter(|u| u.closed_at.is_none());
        let ok = verify_password(user.as_ref().map(|u| u.password_hash.clone()), password).await?;
        let user = match (ok, user) {
            (true, Some(u)) => u,
            _ => return Err(ServiceError::BadCredentials),
        };
        let (token, token_hash) = new_token(TOKEN_PREFIX);
        let now = inner.clock.now();
        let device: String = device
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        let record = SessionRecord {
            id: SessionId::at(now),
            user_id: user.id,
            token_hash,
            device: if device.is_empty() {
                "unnamed device".into()
            } else {
                device
            },
            created_at: now,
            expires_at: now.plus(inner.config.session_ttl),
        };
        inner.store.sessions.create_session(record.clone()).await?;
        tracing::info!(user = %user.id, session = %record.id, "signed in");
        Ok(NewSession {
            token,
            user_id: user.id,
            session: info(&record, record.id),
        })
    }

    /// Resolves a bearer token to its session.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Principal> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(ServiceError::Unauthenticated);
        }
        let inner = &self.inner;
        let s = inner
            .store
            .sessions
            .session_by_token(&hash_token(token))
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if s.expires_at <= inner.clock.now() {
            return Err(ServiceError::Unauthenticated);
        }
        let user = inner
            .store
            .accounts
            .user_by_id(s.user_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            session_id: s.id,
            birth_date: user.birth_date,
            created_at: user.created_at,
        })
    }

    /// When the caller's account was created.
    pub async fn created_at(&self, who: &Principal) -> ServiceResult<Timestamp> {
        Ok(self
            .inner
            .store
            .accounts
            .user_by_id(who.user_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?
            .created_at)
    }

    /// The caller's sessions, newest first.
    pub async fn sessions(&self, who: &Principal) -> ServiceResult<Vec<SessionInfo>> {
        let all = self.inner.store.sessions.sessions_of(who.user_id).await?;
        Ok(all.iter().map(|s| info(s, who.session_id)).collect())
    }

    /// Closes the caller's account, at once, when `password` is theirs: signed out on
    /// every device, every message they sent deleted for everyone (members' live sessions
    /// told), their own data destroyed — except message bodies a preservation hold keeps
    /// until it ends (counted in [`AccountClosure::kept`], so they can be told). Their
    /// name stays taken for the grace period, then is freed.
    pub async fn close_account(
        &self,
        who: &Principal,
        password: Password,
    ) -> ServiceResult<custodia_store::AccountClosure> {
        let store = &self.inner.store;
        let user = store
            .accounts
            .user_by_id(who.user_id)
            .await?
            .filter(|u| u.closed_at.is_none())
            .ok_or(ServiceError::Unauthenticated)?;
        if !verify_password(Some(user.password_hash), password).await? {
            return Err(ServiceError::Forbidden(
                "that is not this account's password; the account stays open",
            ));
        }
        let sessions = store.sessions.sessions_of(who.user_id).await?;
        let closure = store
            .accounts
            .close_account(who.user_id, self.inner.clock.now())
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let fanout = self.inner.fanout.clone();
        for s in sessions {
            fanout.disconnect_session(who.user_id, s.id).await;
        }
        let mut told = Vec::with_capacity(closure.conversations.len());
        for conversation_id in &closure.conversations {
            told.push((*conversation_id, self.member_ids(*conversation_id).await?));
        }
        // Live sessions learn of every deletion in the background: a member with a long
        // history is answered at once, and fan-out is best effort anyway (a client that
        // misses an event sees the deletion when it next reads).
        let mut deleted: std::collections::HashMap<_, Vec<u64>> = std::collections::HashMap::new();
        for (conversation_id, seq) in &closure.deleted {
            deleted.entry(*conversation_id).or_default().push(*seq);
        }
        let (user_id, username) = (who.user_id, who.username.clone());
        tokio::spawn(async move {
            for (conversation_id, members) in told {
                for seq in deleted.remove(&conversation_id).unwrap_or_default() {
                    let event = Event::Deleted {
                        conversation_id,
                        seq,
                    };
                    fanout.publish(members.clone(), Arc::new(event)).await;
                }
                let left = Event::Membership {
                    conversation_id,
                    user_id,
                    username: username.clone(),
                    joined: false,
                };
                fanout.publish(members, Arc::new(left)).await;
            }
        });
        tracing::info!(
            user = %who.user_id,
            deleted = closure.deleted.len(),
            kept = closure.kept,
            "account closed by its member"
        );
        Ok(closure)
    }

    /// Ends one of the caller's sessions (the current one to sign out); its live
    /// connections are closed at once.
    pub async fn revoke_session(&self, who: &Principal, id: SessionId) -> ServiceResult<()> {
        if !self
            .inner
            .store
            .sessions
            .delete_session(who.user_id, id)
            .await?
        {
            return Err(ServiceError::NotFound("session"));
        }
        self.inner.fanout.disconnect_session(who.user_id, id).await;
        Ok(())
    }
}

fn info(s: &SessionRecord, current: SessionId) -> SessionInfo {
    SessionInfo {
        id: s.id,
        device: s.device.clone(),
        created_at: s.created_at,
        expires_at: s.expires_at,
        current: s.id == current,
    }
}
