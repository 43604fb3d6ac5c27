//! One conformance suite of storage behaviour, for every backend: a backend's tests invoke
//! [`conformance_tests!`] with a function that gives a fresh, empty [`Storage`] per check
//! (one test per check), so the backends cannot drift apart. Each check names the
//! behaviour the services rely on.
//!
//! The transparency log's checks (in `log`) compare roots and proofs across tile
//! boundaries against an independent computation.

mod log;
mod lookups;

use custodia_core::{
    BirthDate, CaseId, CaseKind, ClientMsgId, ConversationId, ConversationKind, DataTier, Epoch,
    MemberRole, MessageId, ReasonCode, RequestId, RequestStatus, SessionId, StaffChangeId,
    StaffChangeKind, StaffChangeStatus, StaffId, StaffRole, Timestamp, UserId, Username,
    WhoCanMessage,
};
use custodia_store::{
    AccessRequestRecord, AddMember, Appended, CaseRecord, DecisionRecord, FlaggedSignal, Franking,
    HashKind, NewConversation, NewMessage, PendingSignal, SealedBody, SealedTotp, SeqRange,
    SessionRecord, StaffChangeRecord, StaffEffect, StaffEnrolment, StaffRecord, StaffSessionRecord,
    Storage, StoreError, TokenHash, UserRecord, WrappedDek,
};

const T0: Timestamp = Timestamp::from_millis(1_795_435_200_000);

/// A fresh, empty store for one check, and whatever must live as long as it (a
/// temporary directory, a scratch database).
pub struct Fresh {
    /// The store.
    pub storage: Storage,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Fresh {
    /// `storage`, keeping `keep` alive until the check is done.
    pub fn new(storage: Storage, keep: impl std::any::Any + Send + Sync) -> Self {
        Self {
            storage,
            _keep: Box::new(keep),
        }
    }
}

/// The checks, one public function each (for [`conformance_tests!`]).
#[doc(hidden)]
pub mod checks {
    pub use super::log::{
        an_append_lands_only_at_the_end_its_caller_saw,
        appends_roots_and_proofs_across_tile_boundaries,
        the_checkpoint_only_moves_from_the_one_expected,
    };
    pub use super::lookups::{
        a_users_sessions_are_listed_newest_first, a_working_store_answers_a_ping,
        access_notices_are_a_members_own_and_stored_once_per_entry,
        an_attachment_is_kept_whole_and_found_by_id, blocks_are_listed_and_connections_end,
        cases_are_listed_newest_first_with_their_requests,
        legal_requests_are_numbered_kept_whole_and_reviewed_once,
        members_leave_and_read_positions_only_move_forward,
        staff_are_listed_oldest_first_and_their_sessions_end,
        users_are_found_by_id_and_flags_stick,
    };
    pub use super::{
        a_decision_is_recorded_once_and_only_from_the_state_seen,
        a_direct_pair_has_one_conversation, a_hold_keeps_what_it_covers_until_it_ends_once,
        a_repeated_client_id_returns_the_first_message,
        a_signal_is_stored_with_its_message_and_kept_until_handled,
        a_staff_change_is_decided_once_and_applied_with_its_decision, a_totp_step_is_used_once,
        an_enrolment_code_works_once_and_credentials_change_only_when_enrolled,
        closing_an_account_deletes_its_messages_and_data_except_what_a_hold_keeps,
        concurrent_appends_get_contiguous_sequence_numbers,
        connections_become_mutual_and_blocks_work_either_way,
        groups_refuse_members_beyond_the_limit,
        hash_lists_match_exactly_and_pdq_entries_load_incrementally,
        history_pages_both_ways_and_tombstones_destroy_bodies,
        kek_sealed_things_are_found_by_version_and_replaced_only_if_unchanged,
        rate_buckets_spend_each_token_once_and_refill,
        retention_shreds_whole_epochs_past_the_cut_off_except_held_ones,
        sessions_are_found_by_token_hash_and_deleted, the_first_wrapped_dek_stored_wins,
        usernames_are_unique,
    };
}

/// Declares one test per check for a backend: `conformance_tests!(fresh)` where
/// `async fn fresh() -> Fresh` gives a new, empty store. Each check is its own test, so a
/// failure names the behaviour and the others still run.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@each $fresh;
            usernames_are_unique,
            sessions_are_found_by_token_hash_and_deleted,
            a_direct_pair_has_one_conversation,
            groups_refuse_members_beyond_the_limit,
            concurrent_appends_get_contiguous_sequence_numbers,
            a_repeated_client_id_returns_the_first_message,
            history_pages_both_ways_and_tombstones_destroy_bodies,
            a_hold_keeps_what_it_covers_until_it_ends_once,
            retention_shreds_whole_epochs_past_the_cut_off_except_held_ones,
            closing_an_account_deletes_its_messages_and_data_except_what_a_hold_keeps,
            the_first_wrapped_dek_stored_wins,
            kek_sealed_things_are_found_by_version_and_replaced_only_if_unchanged,
            a_totp_step_is_used_once,
            a_signal_is_stored_with_its_message_and_kept_until_handled,
            an_enrolment_code_works_once_and_credentials_change_only_when_enrolled,
            a_staff_change_is_decided_once_and_applied_with_its_decision,
            a_decision_is_recorded_once_and_only_from_the_state_seen,
            connections_become_mutual_and_blocks_work_either_way,
            hash_lists_match_exactly_and_pdq_entries_load_incrementally,
            rate_buckets_spend_each_token_once_and_refill,
            appends_roots_and_proofs_across_tile_boundaries,
            an_append_lands_only_at_the_end_its_caller_saw,
            the_checkpoint_only_moves_from_the_one_expected,
            users_are_found_by_id_and_flags_stick,
            a_users_sessions_are_listed_newest_first,
            members_leave_and_read_positions_only_move_forward,
            staff_are_listed_oldest_first_and_their_sessions_end,
            cases_are_listed_newest_first_with_their_requests,
            blocks_are_listed_and_connections_end,
            an_attachment_is_kept_whole_and_found_by_id,
            a_working_store_answers_a_ping,
            access_notices_are_a_members_own_and_stored_once_per_entry,
            legal_requests_are_numbered_kept_whole_and_reviewed_once
        );
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fresh = $fresh().await;
                $crate::checks::$check(&fresh.storage).await;
            }
        )*
    };
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        id: UserId::new(),
        username: Username::parse(name).unwrap(),
        password_hash: "$argon2id$test".into(),
        birth_date: BirthDate::parse("1990-01-01", time::macros::date!(2026 - 01 - 01)).unwrap(),
        created_at: T0,
        closed_at: None,
    }
}

/// A hold on `conversation` for `account`'s request, over its first hour, for a day.
fn day_hold(account: UserId, conversation: ConversationId) -> custodia_store::HoldRecord {
    use custodia_core::{HoldId, LegalRequestId, StaffId};
    custodia_store::HoldRecord {
        id: HoldId::new(),
        legal_request: LegalRequestId::new(),
        account,
        conversations: vec![conversation],
        period: (T0, T0.plus(std::time::Duration::from_secs(3600))),
        placed_by: StaffId::new(),
        placed_at: T0,
        expires_at: T0.plus(std::time::Duration::from_secs(86_400)),
        extended: false,
        ended: None,
    }
}

async fn users(s: &Storage, names: &[&str]) -> Vec<UserId> {
    let mut out = Vec::new();
    for n in names {
        let u = user(n);
        out.push(u.id);
        s.accounts.create_user(u).await.unwrap();
    }
    out
}

async fn conversation(s: &Storage, members: &[UserId], kind: ConversationKind) -> ConversationId {
    let id = ConversationId::new();
    s.conversations
        .create_conversation(NewConversation {
            id,
            kind,
            title: None,
            created_by: members[0],
            created_at: T0,
            members: members.iter().map(|m| (*m, MemberRole::Member)).collect(),
        })
        .await
        .unwrap();
    id
}

fn message(conv: ConversationId, sender: UserId, client: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation_id: conv,
        sender_id: sender,
        client_id: ClientMsgId::parse(client).unwrap(),
        sent_at: T0,
        epoch: Epoch::from_label("m2026-11".into()),
        sealed: SealedBody(format!("sealed {client}").into_bytes()),
        franking: Franking {
            commitment: [1; 32],
            tag: vec![2; 36],
        },
        signal: None,
    }
}

#[doc(hidden)]
pub async fn usernames_are_unique(s: &Storage) {
    s.accounts.create_user(user("ada")).await.unwrap();
    let again = s.accounts.create_user(user("ada")).await;
    assert!(
        matches!(again, Err(StoreError::Conflict)),
        "usernames are unique"
    );
    let found = s
        .accounts
        .user_by_name(&Username::parse("ada").unwrap())
        .await
        .unwrap();
    assert!(found.is_some(), "a user is found by name");
}

#[doc(hidden)]
pub async fn sessions_are_found_by_token_hash_and_deleted(s: &Storage) {
    let [u] = users(s, &["sam"]).await[..] else {
        unreachable!()
    };
    let session = SessionRecord {
        id: SessionId::new(),
        user_id: u,
        token_hash: TokenHash([9; 32]),
        device: "phone".into(),
        created_at: T0,
        expires_at: T0.plus(std::time::Duration::from_secs(60)),
    };
    s.sessions.create_session(session.clone()).await.unwrap();
    let found = s
        .sessions
        .session_by_token(&TokenHash([9; 32]))
        .await
        .unwrap();
    assert_eq!(
        found.map(|f| f.id),
        Some(session.id),
        "sessions by token hash"
    );
    assert!(s.sessions.delete_session(u, session.id).await.unwrap());
    assert!(
        !s.sessions.delete_session(u, session.id).await.unwrap(),
        "deleted once"
    );
    assert!(
        s.sessions
            .session_by_token(&TokenHash([9; 32]))
            .await
            .unwrap()
            .is_none()
    );
}

#[doc(hidden)]
pub async fn a_direct_pair_has_one_conversation(s: &Storage) {
    let ids = users(s, &["dee", "dan"]).await;
    let first = conversation(s, &ids, ConversationKind::Direct).await;
    let second = s
        .conversations
        .create_conversation(NewConversation {
            id: ConversationId::new(),
            kind: ConversationKind::Direct,
            title: None,
            created_by: ids[1],
            created_at: T0,
            members: vec![(ids[1], MemberRole::Member), (ids[0], MemberRole::Member)],
        })
        .await;
    assert!(
        matches!(second, Err(StoreError::Conflict)),
        "one direct conversation per pair"
    );
    assert_eq!(
        s.conversations
            .direct_between(ids[1], ids[0])
            .await
            .unwrap(),
        Some(first)
    );
}

#[doc(hidden)]
pub async fn groups_refuse_members_beyond_the_limit(s: &Storage) {
    let ids = users(s, &["gia", "gus", "gil"]).await;
    let g = conversation(s, &ids[..2], ConversationKind::Group).await;
    assert_eq!(
        s.conversations
            .add_member(g, ids[2], MemberRole::Member, T0, 2)
            .await
            .unwrap(),
        AddMember::Full
    );
    assert_eq!(
        s.conversations
            .add_member(g, ids[2], MemberRole::Member, T0, 3)
            .await
            .unwrap(),
        AddMember::Added
    );
    assert_eq!(
        s.conversations
            .add_member(g, ids[2], MemberRole::Member, T0, 3)
            .await
            .unwrap(),
        AddMember::AlreadyMember
    );
}

#[doc(hidden)]
pub async fn concurrent_appends_get_contiguous_sequence_numbers(s: &Storage) {
    let ids = users(s, &["cat", "cal"]).await;
    let c = conversation(s, &ids, ConversationKind::Direct).await;
    let appends = (0..50).map(|i| s.messages.append(message(c, ids[i % 2], &format!("m{i}"))));
    let mut seqs: Vec<u64> = futures_util::future::join_all(appends)
        .await
        .into_iter()
        .map(|r| match r.unwrap() {
            Appended::New(m) => m.seq,
            Appended::Duplicate(_) => panic!("distinct client ids are not duplicates"),
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<_>>(),
        "no gap, no duplicate sequence number"
    );
}

#[doc(hidden)]
pub async fn a_repeated_client_id_returns_the_first_message(s: &Storage) {
    let ids = users(s, &["rae", "rob"]).await;
    let c = conversation(s, &ids, ConversationKind::Direct).await;
    let Appended::New(first) = s.messages.append(message(c, ids[0], "same")).await.unwrap() else {
        panic!("the first append is new");
    };
    match s.messages.append(message(c, ids[0], "same")).await.unwrap() {
        Appended::Duplicate(m) => assert_eq!((m.id, m.seq), (first.id, first.seq)),
        Appended::New(_) => panic!("a repeated client id must not make a second message"),
    }
    // Another sender may use the same client id.
    assert!(matches!(
        s.messages.append(message(c, ids[1], "same")).await.unwrap(),
        Appended::New(_)
    ));
}

#[doc(hidden)]
pub async fn history_pages_both_ways_and_tombstones_destroy_bodies(s: &Storage) {
    let ids = users(s, &["hal", "hob"]).await;
    let c = conversation(s, &ids, ConversationKind::Direct).await;
    for i in 1..=10 {
        s.messages
            .append(message(c, ids[0], &format!("h{i}")))
            .await
            .unwrap();
    }
    let after: Vec<u64> = s
        .messages
        .messages(c, SeqRange::After(3), 4)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(after, vec![4, 5, 6, 7], "after: the oldest, ascending");
    let before: Vec<u64> = s
        .messages
        .messages(c, SeqRange::Before(9), 3)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(before, vec![6, 7, 8], "before: the newest, ascending");
    assert!(s.messages.tombstone(c, 5, T0).await.unwrap());
    let m = s.messages.message(c, 5).await.unwrap().unwrap();
    assert!(
        m.sealed.is_none() && m.deleted_at.is_some(),
        "the sealed body is destroyed"
    );
    assert!(m.franking.is_some(), "the franking (no plaintext) stays");
    assert!(!s.messages.tombstone(c, 99, T0).await.unwrap());
}

#[doc(hidden)]
pub async fn the_first_wrapped_dek_stored_wins(s: &Storage) {
    let c = ConversationId::new();
    let epoch = Epoch::from_label("m2026-11".into());
    let a = WrappedDek {
        kek_version: 1,
        bytes: vec![1; 40],
    };
    let b = WrappedDek {
        kek_version: 1,
        bytes: vec![2; 40],
    };
    assert_eq!(
        s.deks.put_wrapped_dek(c, &epoch, a.clone()).await.unwrap(),
        a
    );
    assert_eq!(
        s.deks.put_wrapped_dek(c, &epoch, b).await.unwrap(),
        a,
        "a racing writer gets the stored key"
    );
    assert_eq!(s.deks.wrapped_dek(c, &epoch).await.unwrap(), Some(a));
}

#[doc(hidden)]
pub async fn a_signal_is_stored_with_its_message_and_kept_until_handled(s: &Storage) {
    let u = users(s, &["sig1", "sig2"]).await;
    let conv = conversation(s, &u, ConversationKind::Direct).await;
    let signal = FlaggedSignal {
        rules: vec!["grooming phrase".into(), "age question".into()],
        category: custodia_core::ReportCategory::ChildSafety,
        score: 7,
    };
    s.messages
        .append(message(conv, u[0], "plain"))
        .await
        .unwrap();
    let flagged = NewMessage {
        signal: Some(signal.clone()),
        ..message(conv, u[0], "flagged")
    };
    s.messages.append(flagged.clone()).await.unwrap();
    // A retry of the same send stores nothing twice.
    s.messages.append(flagged).await.unwrap();
    let pending = s.messages.pending_signals(10).await.unwrap();
    assert_eq!(
        pending,
        vec![PendingSignal {
            conversation_id: conv,
            seq: 2,
            signal,
        }],
        "exactly the flagged message's signal waits, with its rule names"
    );
    assert!(s.messages.signal_handled(conv, 2).await.unwrap());
    assert!(!s.messages.signal_handled(conv, 2).await.unwrap());
    assert!(s.messages.pending_signals(10).await.unwrap().is_empty());
}

#[doc(hidden)]
pub async fn a_totp_step_is_used_once(s: &Storage) {
    let staff = StaffRecord {
        id: StaffId::new(),
        username: Username::parse("sara").unwrap(),
        password_hash: "$argon2id$test".into(),
        totp: SealedTotp {
            kek_version: 1,
            bytes: vec![3; 40],
        },
        role: StaffRole::Moderator,
        active: true,
        created_at: T0,
        role_since: T0,
        sponsors: Vec::new(),
        enrolment: None,
    };
    s.staff.create_staff(staff.clone()).await.unwrap();
    assert!(s.staff.use_totp_step(staff.id, 100).await.unwrap());
    assert!(
        !s.staff.use_totp_step(staff.id, 100).await.unwrap(),
        "a step works once"
    );
    assert!(
        !s.staff.use_totp_step(staff.id, 99).await.unwrap(),
        "never an older one"
    );
    assert!(s.staff.use_totp_step(staff.id, 101).await.unwrap());
    // A sign-in that could not be completed gives its step back: the retry works once.
    assert!(
        !s.staff.unuse_totp_step(staff.id, 100).await.unwrap(),
        "not a step that is no longer the last"
    );
    assert!(s.staff.unuse_totp_step(staff.id, 101).await.unwrap());
    assert!(s.staff.use_totp_step(staff.id, 101).await.unwrap());
    assert!(!s.staff.use_totp_step(staff.id, 101).await.unwrap());
    assert!(
        !s.staff.use_totp_step(staff.id, 100).await.unwrap(),
        "giving back does not reopen older steps"
    );
}

fn unenrolled(name: &str, code: u8, sponsors: Vec<StaffId>) -> StaffRecord {
    StaffRecord {
        id: StaffId::new(),
        username: Username::parse(name).unwrap(),
        password_hash: String::new(),
        totp: SealedTotp {
            kek_version: 0,
            bytes: Vec::new(),
        },
        role: StaffRole::Moderator,
        active: true,
        created_at: T0,
        role_since: T0,
        sponsors,
        enrolment: Some(StaffEnrolment {
            code_hash: TokenHash([code; 32]),
            expires_at: T0.plus(std::time::Duration::from_secs(3600)),
        }),
    }
}

#[doc(hidden)]
pub async fn an_enrolment_code_works_once_and_credentials_change_only_when_enrolled(s: &Storage) {
    let (a, b) = (StaffId::new(), StaffId::new());
    let new = unenrolled("nina", 7, vec![a, b]);
    s.staff.create_staff(new.clone()).await.unwrap();
    let stored = s.staff.staff_by_id(new.id).await.unwrap().unwrap();
    assert_eq!(stored.sponsors, vec![a, b], "sponsors are kept in order");
    assert_eq!(stored.enrolment, new.enrolment);
    let totp = SealedTotp {
        kek_version: 1,
        bytes: vec![5; 40],
    };
    let set = |code: Option<TokenHash>, hash: &str| {
        s.staff
            .set_staff_credentials(new.id, code, hash.into(), totp.clone())
    };
    assert!(
        !set(None, "$argon2id$early").await.unwrap(),
        "no credentials are set on an account that has not enrolled"
    );
    assert!(
        !set(Some(TokenHash([8; 32])), "$argon2id$wrong")
            .await
            .unwrap(),
        "a wrong code enrols nothing"
    );
    assert!(
        set(Some(TokenHash([7; 32])), "$argon2id$one")
            .await
            .unwrap()
    );
    assert!(
        !set(Some(TokenHash([7; 32])), "$argon2id$two")
            .await
            .unwrap(),
        "an enrolment code works once"
    );
    let enrolled = s.staff.staff_by_id(new.id).await.unwrap().unwrap();
    assert_eq!(enrolled.password_hash, "$argon2id$one");
    assert_eq!(enrolled.totp, totp);
    assert_eq!(enrolled.enrolment, None);
    assert!(s.staff.use_totp_step(new.id, 500).await.unwrap());
    assert!(set(None, "$argon2id$changed").await.unwrap());
    let changed = s.staff.staff_by_name(&new.username).await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "$argon2id$changed");
    assert!(
        !s.staff.use_totp_step(new.id, 500).await.unwrap(),
        "a password change keeps the TOTP secret's used steps"
    );
    let renewed = SealedTotp {
        kek_version: 1,
        bytes: vec![6; 40],
    };
    assert!(
        s.staff
            .set_staff_credentials(new.id, None, "$argon2id$changed".into(), renewed)
            .await
            .unwrap()
    );
    assert!(
        s.staff.use_totp_step(new.id, 500).await.unwrap(),
        "a new TOTP secret starts afresh"
    );
}

#[doc(hidden)]
pub async fn a_staff_change_is_decided_once_and_applied_with_its_decision(s: &Storage) {
    let admin = StaffId::new();
    let approver = StaffId::new();
    let record = unenrolled("omar", 1, vec![admin, approver]);
    let change = |kind, staff: &StaffRecord, role, active| StaffChangeRecord {
        id: StaffChangeId::new(),
        kind,
        staff_id: staff.id,
        username: staff.username.clone(),
        role,
        active,
        proposed_by: admin,
        proposed_at: T0,
        status: StaffChangeStatus::Pending,
        decided_by: None,
        decided_at: None,
    };
    let create = change(StaffChangeKind::Create, &record, StaffRole::Moderator, true);
    s.staff.create_staff_change(create.clone()).await.unwrap();
    assert_eq!(
        s.staff.staff_change(create.id).await.unwrap(),
        Some(create.clone())
    );
    let t1 = T0.plus(std::time::Duration::from_secs(60));
    let decide = |id, status, effect| {
        s.staff
            .decide_staff_change(id, status, Some(approver), t1, effect)
    };
    assert!(
        decide(
            create.id,
            StaffChangeStatus::Approved,
            Some(StaffEffect::Create(record.clone()))
        )
        .await
        .unwrap()
    );
    assert!(s.staff.staff_by_id(record.id).await.unwrap().is_some());
    assert!(
        !decide(create.id, StaffChangeStatus::Denied, None)
            .await
            .unwrap(),
        "a change is decided once"
    );
    let decided = s.staff.staff_change(create.id).await.unwrap().unwrap();
    assert_eq!(decided.status, StaffChangeStatus::Approved);
    assert_eq!(decided.decided_by, Some(approver));
    assert_eq!(decided.decided_at, Some(t1));

    // A creation whose username is now taken: refused, and the change stays pending.
    let twin = unenrolled("omar", 2, vec![admin]);
    let dup = change(StaffChangeKind::Create, &twin, StaffRole::Moderator, true);
    s.staff.create_staff_change(dup.clone()).await.unwrap();
    assert!(matches!(
        decide(
            dup.id,
            StaffChangeStatus::Approved,
            Some(StaffEffect::Create(twin))
        )
        .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.staff.staff_change(dup.id).await.unwrap().unwrap().status,
        StaffChangeStatus::Pending,
        "a refused effect undoes its decision"
    );

    // A role change with deactivation: applied with the decision, sessions ended.
    s.staff
        .create_staff_session(StaffSessionRecord {
            id: SessionId::new(),
            staff_id: record.id,
            token_hash: TokenHash([4; 32]),
            created_at: T0,
            expires_at: t1,
        })
        .await
        .unwrap();
    let update = change(
        StaffChangeKind::Update,
        &record,
        StaffRole::SeniorModerator,
        false,
    );
    s.staff.create_staff_change(update.clone()).await.unwrap();
    let effect = StaffEffect::Update {
        id: record.id,
        role: StaffRole::SeniorModerator,
        active: false,
        sponsors: vec![admin, approver, StaffId::new()],
        role_since: t1,
    };
    assert!(
        decide(update.id, StaffChangeStatus::Approved, Some(effect))
            .await
            .unwrap()
    );
    let after = s.staff.staff_by_id(record.id).await.unwrap().unwrap();
    assert_eq!(after.role, StaffRole::SeniorModerator);
    assert!(!after.active);
    assert_eq!(after.role_since, t1);
    assert_eq!(after.sponsors.len(), 3);
    assert!(
        s.staff
            .staff_session_by_token(&TokenHash([4; 32]))
            .await
            .unwrap()
            .is_none(),
        "deactivation ends the account's sessions"
    );
    let all = s.staff.staff_changes().await.unwrap();
    assert_eq!(all.len(), 3);
}

#[doc(hidden)]
pub async fn a_decision_is_recorded_once_and_only_from_the_state_seen(s: &Storage) {
    let conv = ConversationId::new();
    let case = CaseRecord {
        id: CaseId::new(),
        kind: CaseKind::Report,
        conversation_id: conv,
        reporter: None,
        category: None,
        comment: None,
        reported: vec![3],
        evidence: Vec::new(),
        scope: (1, 3),
        reference: None,
        opened_by: None,
        nondisclosure_until: None,
        opened_at: T0,
        priority: custodia_core::CasePriority::Normal,
        files: Vec::new(),
    };
    s.cases.create_case(case.clone()).await.unwrap();
    assert_eq!(s.cases.case(case.id).await.unwrap(), Some(case.clone()));
    let (a, b) = (StaffId::new(), StaffId::new());
    let request = AccessRequestRecord {
        id: RequestId::new(),
        case_id: case.id,
        requester: StaffId::new(),
        requester_role: StaffRole::Moderator,
        reason: ReasonCode::ReportReview,
        conversation_id: conv,
        seqs: (1, 3),
        tier: DataTier::Content,
        duration_ms: 60_000,
        justification: "check".into(),
        created_at: T0,
        pending_until: T0,
        broad: false,
        required: 1,
        approvers: vec![a, b],
        status: RequestStatus::Pending,
        decisions: Vec::new(),
        granted: None,
    };
    s.cases.create_request(request.clone()).await.unwrap();
    let decision = |who| DecisionRecord {
        staff_id: who,
        role: StaffRole::SeniorModerator,
        approve: true,
        justification: "ok".into(),
        at: T0,
        log_index: 7,
    };
    let granted = Some((T0, T0.plus(std::time::Duration::from_secs(60))));
    assert!(
        s.cases
            .decide(
                request.id,
                decision(a),
                RequestStatus::Pending,
                RequestStatus::Approved,
                granted
            )
            .await
            .unwrap()
    );
    assert!(
        !s.cases
            .decide(
                request.id,
                decision(b),
                RequestStatus::Pending,
                RequestStatus::Approved,
                granted
            )
            .await
            .unwrap(),
        "a decision only from the state the decider saw"
    );
    let stored = s.cases.request(request.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RequestStatus::Approved);
    assert_eq!(stored.decisions.len(), 1);
    let mut frozen = vec![a, b];
    frozen.sort();
    assert_eq!(stored.approvers, frozen, "approvers are kept as frozen");
    let twice = s
        .cases
        .decide(
            request.id,
            decision(a),
            RequestStatus::Approved,
            RequestStatus::Approved,
            None,
        )
        .await;
    assert!(
        matches!(twice, Err(StoreError::Conflict)),
        "one decision per approver"
    );
    assert!(
        s.cases
            .set_request_status(request.id, RequestStatus::Approved, RequestStatus::Revoked)
            .await
            .unwrap()
    );
    assert!(
        !s.cases
            .set_request_status(request.id, RequestStatus::Approved, RequestStatus::Active)
            .await
            .unwrap()
    );
}

#[doc(hidden)]
pub async fn connections_become_mutual_and_blocks_work_either_way(s: &Storage) {
    let (a, b) = (UserId::new(), UserId::new());
    let asked = s.safety.request_connection(a, b, T0).await.unwrap();
    assert!(!asked.accepted && asked.requested_by == a);
    assert!(
        !s.safety
            .request_connection(a, b, T0)
            .await
            .unwrap()
            .accepted,
        "asking twice"
    );
    assert!(
        s.safety
            .request_connection(b, a, T0)
            .await
            .unwrap()
            .accepted,
        "asking back accepts"
    );
    assert_eq!(s.safety.connections_of(b).await.unwrap().len(), 1);
    s.safety.block(a, b, T0).await.unwrap();
    assert!(
        s.safety.connection(a, b).await.unwrap().is_none(),
        "a block ends the connection"
    );
    assert!(s.safety.is_blocked(a, b).await.unwrap() && !s.safety.is_blocked(b, a).await.unwrap());
    assert!(s.safety.blocked_either_way(b, a).await.unwrap());
    assert_eq!(s.safety.blocked_with(b).await.unwrap(), vec![a]);
    // One read gives a send its recipients and who among them is in a block with it.
    s.accounts
        .create_user(UserRecord {
            id: a,
            ..user("blocker")
        })
        .await
        .unwrap();
    s.accounts
        .create_user(UserRecord {
            id: b,
            ..user("blocked")
        })
        .await
        .unwrap();
    let third = users(s, &["third"]).await[0];
    let group = conversation(s, &[a, b, third], ConversationKind::Group).await;
    let mut flags = s.conversations.recipients(group, b).await.unwrap();
    flags.sort_by_key(|(u, _)| *u == b);
    let blocked: Vec<bool> = [a, third, b]
        .iter()
        .map(|u| flags.iter().find(|(v, _)| v == u).unwrap().1)
        .collect();
    assert_eq!(
        blocked,
        vec![true, false, false],
        "flags from the sender's side"
    );
    assert!(s.safety.unblock(a, b).await.unwrap());
    assert!(!s.safety.blocked_either_way(a, b).await.unwrap());
    s.safety
        .set_who_can_message(a, WhoCanMessage::Nobody)
        .await
        .unwrap();
    assert_eq!(
        s.safety.who_can_message(a).await.unwrap(),
        Some(WhoCanMessage::Nobody)
    );
}

#[doc(hidden)]
pub async fn hash_lists_match_exactly_and_pdq_entries_load_incrementally(s: &Storage) {
    let a = s
        .attachments
        .import_hashes(
            "list".into(),
            HashKind::Sha256,
            vec![vec![5; 32], vec![5; 32]],
        )
        .await
        .unwrap();
    assert_eq!(a, 1, "duplicates are ignored");
    let hit = s
        .attachments
        .hash_match(vec![
            (HashKind::Md5, vec![5; 16]),
            (HashKind::Sha256, vec![5; 32]),
        ])
        .await
        .unwrap();
    assert_eq!(hit.as_deref(), Some("list"));
    assert!(
        s.attachments
            .hash_match(vec![(HashKind::Md5, vec![5; 32])])
            .await
            .unwrap()
            .is_none(),
        "kinds are kept apart"
    );
    s.attachments
        .import_pdq("p".into(), vec![[1; 32], [2; 32]])
        .await
        .unwrap();
    let all = s.attachments.pdq_after(0).await.unwrap();
    assert_eq!(all.len(), 2);
    s.attachments
        .import_pdq("p".into(), vec![[3; 32]])
        .await
        .unwrap();
    let new = s.attachments.pdq_after(all[1].0).await.unwrap();
    assert_eq!(new.len(), 1, "only what was added since");
    assert_eq!(new[0].1, [3; 32]);
}

/// Concurrent takes from one bucket spend each token once; it refills with time, keys are
/// apart, and idle buckets are forgotten.
#[doc(hidden)]
pub async fn rate_buckets_spend_each_token_once_and_refill(s: &Storage) {
    let limit = custodia_core::RateLimit {
        burst: 3,
        per: std::time::Duration::from_secs(60),
    };
    let takes = (0..10).map(|_| s.limits.take_token("login:alice".into(), limit, T0));
    let outcomes = futures_util::future::join_all(takes).await;
    let allowed = outcomes.iter().filter(|o| matches!(o, Ok(Ok(())))).count();
    assert_eq!(
        allowed, 3,
        "a burst of 3 allows 3 of 10 concurrent attempts"
    );
    let denied = s
        .limits
        .take_token("login:alice".into(), limit, T0)
        .await
        .unwrap();
    assert_eq!(
        denied,
        Err(std::time::Duration::from_secs(20)),
        "one token per 20 s"
    );
    assert_eq!(
        s.limits
            .take_token("login:bob".into(), limit, T0)
            .await
            .unwrap(),
        Ok(()),
        "another key has its own bucket"
    );
    let later = Timestamp::from_millis(T0.as_millis() + 20_000);
    assert_eq!(
        s.limits
            .take_token("login:alice".into(), limit, later)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.limits.forget_buckets(later).await.unwrap(),
        1,
        "only bob's bucket is idle since before `later`"
    );
}

#[doc(hidden)]
pub async fn a_hold_keeps_what_it_covers_until_it_ends_once(s: &Storage) {
    use custodia_core::{HoldEnd, HoldId, LegalRequestId, StaffId};
    let ids = users(s, &["hel", "hux"]).await;
    let held = conversation(s, &ids, ConversationKind::Direct).await;
    let other = conversation(s, &ids[..1], ConversationKind::Group).await;
    for c in [held, other] {
        for i in 1..=3 {
            let mut m = message(c, ids[0], &format!("k{i}"));
            m.sent_at = T0.plus(std::time::Duration::from_secs(i * 100));
            s.messages.append(m).await.unwrap();
        }
    }
    let at = |secs: u64| T0.plus(std::time::Duration::from_secs(secs));
    let request = LegalRequestId::new();
    let hold = custodia_store::HoldRecord {
        id: HoldId::new(),
        legal_request: request,
        account: ids[0],
        conversations: vec![held],
        // Messages 1 and 2 (sent at 100 s and 200 s), not 3.
        period: (at(50), at(250)),
        placed_by: StaffId::new(),
        placed_at: at(1_000),
        expires_at: at(10_000),
        extended: false,
        ended: None,
    };
    // Which messages a period holds, by sequence number.
    assert_eq!(
        s.messages.seq_span(held, (at(50), at(250))).await.unwrap(),
        Some((1, 2))
    );
    assert_eq!(
        s.messages.seq_span(held, (at(200), at(300))).await.unwrap(),
        Some((2, 3)),
        "both ends included"
    );
    assert_eq!(
        s.messages.seq_span(held, (at(301), at(999))).await.unwrap(),
        None
    );
    s.cases.add_hold(hold.clone()).await.unwrap();
    assert_eq!(s.cases.hold(hold.id).await.unwrap(), Some(hold.clone()));
    assert_eq!(s.cases.holds_of(request).await.unwrap(), vec![hold.clone()]);
    assert!(
        s.cases
            .holds_of(LegalRequestId::new())
            .await
            .unwrap()
            .is_empty()
    );

    // Deleted for everyone: a held message keeps its body; the rest lose theirs.
    for c in [held, other] {
        for seq in 1..=3 {
            assert!(s.messages.tombstone(c, seq, at(2_000)).await.unwrap());
        }
    }
    let body = async |c, seq| {
        let m = s.messages.message(c, seq).await.unwrap().unwrap();
        assert!(m.deleted_at.is_some());
        m.sealed.is_some()
    };
    assert!(
        body(held, 1).await && body(held, 2).await,
        "held bodies stay"
    );
    assert!(!body(held, 3).await, "outside the period: destroyed");
    assert!(!body(other, 1).await, "another conversation: destroyed");
    assert_eq!(
        s.messages.purge_deleted(100).await.unwrap(),
        0,
        "still held"
    );

    // Extended once only; expired once; then the deferred deletions happen.
    assert!(s.cases.extend_hold(hold.id, at(20_000)).await.unwrap());
    assert!(
        !s.cases.extend_hold(hold.id, at(30_000)).await.unwrap(),
        "once"
    );
    assert!(s.cases.expire_holds(at(19_999)).await.unwrap().is_empty());
    let expired = s.cases.expire_holds(at(20_000)).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].ended, Some((at(20_000), HoldEnd::Expired)));
    assert!(expired[0].extended && expired[0].expires_at == at(20_000));
    assert!(
        s.cases.expire_holds(at(99_000)).await.unwrap().is_empty(),
        "once"
    );
    assert!(
        !s.cases
            .end_hold(hold.id, at(21_000), HoldEnd::Released)
            .await
            .unwrap()
    );
    assert!(
        !s.cases.extend_hold(hold.id, at(40_000)).await.unwrap(),
        "ended"
    );
    assert_eq!(s.messages.purge_deleted(1).await.unwrap(), 1, "a limit");
    assert_eq!(s.messages.purge_deleted(100).await.unwrap(), 1);
    assert!(!body(held, 1).await && !body(held, 2).await);

    // Released by hand.
    let second = custodia_store::HoldRecord {
        id: HoldId::new(),
        conversations: vec![held, other],
        ..hold
    };
    s.cases.add_hold(second.clone()).await.unwrap();
    assert!(
        s.cases
            .end_hold(second.id, at(3_000), HoldEnd::Released)
            .await
            .unwrap()
    );
    assert_eq!(
        s.cases.hold(second.id).await.unwrap().unwrap().ended,
        Some((at(3_000), HoldEnd::Released))
    );
    assert_eq!(s.cases.holds_of(request).await.unwrap().len(), 2);
}

#[doc(hidden)]
pub async fn closing_an_account_deletes_its_messages_and_data_except_what_a_hold_keeps(
    s: &Storage,
) {
    use custodia_core::HoldEnd;
    let ids = users(s, &["cleo", "dan", "eve"]).await;
    let (cleo, dan, eve) = (ids[0], ids[1], ids[2]);
    let direct = conversation(s, &[cleo, dan], ConversationKind::Direct).await;
    let group = conversation(s, &ids, ConversationKind::Group).await;
    for (c, who, client) in [
        (direct, cleo, "c1"),
        (direct, dan, "d1"),
        (direct, cleo, "c2"),
        (group, cleo, "c3"),
    ] {
        s.messages.append(message(c, who, client)).await.unwrap();
    }
    s.sessions
        .create_session(SessionRecord {
            id: SessionId::new(),
            user_id: cleo,
            token_hash: TokenHash([7; 32]),
            device: "phone".into(),
            created_at: T0,
            expires_at: T0.plus(std::time::Duration::from_secs(60)),
        })
        .await
        .unwrap();
    s.safety.request_connection(cleo, dan, T0).await.unwrap();
    s.safety.request_connection(dan, cleo, T0).await.unwrap();
    s.safety.block(cleo, eve, T0).await.unwrap();
    // The group is preserved.
    let hold = day_hold(dan, group);
    s.cases.add_hold(hold.clone()).await.unwrap();

    let t1 = T0.plus(std::time::Duration::from_secs(60));
    let closure = s.accounts.close_account(cleo, t1).await.unwrap().unwrap();
    let mut deleted = closure.deleted.clone();
    deleted.sort();
    let mut expected = vec![(direct, 1), (direct, 3), (group, 1)];
    expected.sort();
    assert_eq!(deleted, expected, "every message cleo sent, and only hers");
    assert_eq!(closure.kept, 1, "the held group's message keeps its body");
    let mut left = closure.conversations.clone();
    left.sort();
    let mut both = vec![direct, group];
    both.sort();
    assert_eq!(left, both);
    let body = async |c, seq| {
        let m = s.messages.message(c, seq).await.unwrap().unwrap();
        (m.deleted_at.is_some(), m.sealed.is_some())
    };
    assert_eq!(body(direct, 1).await, (true, false), "destroyed");
    assert_eq!(body(direct, 2).await, (false, true), "dan's stays");
    assert_eq!(
        body(group, 1).await,
        (true, true),
        "deleted, kept under the hold"
    );
    assert!(s.sessions.sessions_of(cleo).await.unwrap().is_empty());
    assert!(s.safety.connections_of(dan).await.unwrap().is_empty());
    assert!(s.safety.blocked_by(cleo).await.unwrap().is_empty());
    let members = s.conversations.members(group).await.unwrap();
    assert!(members.iter().all(|m| m.user_id != cleo) && members.len() == 2);
    let closed = s.accounts.user_by_id(cleo).await.unwrap().unwrap();
    assert_eq!(closed.closed_at, Some(t1));
    assert!(
        s.accounts.close_account(cleo, t1).await.unwrap().is_none(),
        "once"
    );

    // The name stays taken until released, then is free for someone else.
    assert_eq!(s.accounts.release_closed_names(t1).await.unwrap(), 0);
    let later = t1.plus(std::time::Duration::from_millis(1));
    assert_eq!(s.accounts.release_closed_names(later).await.unwrap(), 1);
    assert_eq!(s.accounts.release_closed_names(later).await.unwrap(), 0);
    let renamed = s.accounts.user_by_id(cleo).await.unwrap().unwrap();
    assert!(
        renamed.username.as_str().starts_with("closed."),
        "{:?}",
        renamed.username
    );
    users(s, &["cleo"]).await;

    // The hold ends: the kept body goes the way of any deleted message's.
    s.cases
        .end_hold(hold.id, later, HoldEnd::Released)
        .await
        .unwrap();
    assert_eq!(s.messages.purge_deleted(100).await.unwrap(), 1);
    assert_eq!(body(group, 1).await, (true, false));
    s.messages.scrub().await.unwrap();
}

#[doc(hidden)]
pub async fn retention_shreds_whole_epochs_past_the_cut_off_except_held_ones(s: &Storage) {
    use custodia_core::HoldEnd;
    let ids = users(s, &["ret", "rex"]).await;
    let (a, b) = (
        conversation(s, &ids, ConversationKind::Direct).await,
        conversation(s, &ids[..1], ConversationKind::Group).await,
    );
    let wrapped = custodia_store::WrappedDek {
        kek_version: 1,
        bytes: vec![9; 40],
    };
    // a: two messages in January, one in May; b: one in January, held.
    let put = async |c, epoch: &str, n: u32| {
        let epoch = Epoch::from_label(epoch.into());
        s.deks
            .put_wrapped_dek(c, &epoch, wrapped.clone())
            .await
            .unwrap();
        for i in 0..n {
            let mut m = message(c, ids[0], &format!("{}-{i}", epoch.as_str()));
            m.epoch = epoch.clone();
            m.sent_at = T0.plus(std::time::Duration::from_secs(u64::from(i) + 1));
            s.messages.append(m).await.unwrap();
        }
    };
    put(a, "m2026-01", 2).await;
    put(a, "m2026-05", 1).await;
    put(b, "m2026-01", 1).await;
    let hold = day_hold(ids[0], b);
    s.cases.add_hold(hold.clone()).await.unwrap();
    let shred_at_most = async |limit| {
        s.messages
            .shred_epochs("m2026-03".into(), "d2026-03-01".into(), limit)
            .await
            .unwrap()
    };
    let shred = async || shred_at_most(100).await;
    let gone = shred().await;
    assert_eq!(
        gone,
        vec![custodia_store::ShreddedEpoch {
            conversation_id: a,
            epoch: Epoch::from_label("m2026-01".into()),
            messages: 2,
            attachments: 0,
        }],
        "January of a only: May is after the cut-off, and b's January is held"
    );
    let dek = async |c, e: &str| {
        s.deks
            .wrapped_dek(c, &Epoch::from_label(e.into()))
            .await
            .unwrap()
    };
    assert!(dek(a, "m2026-01").await.is_none(), "the key is destroyed");
    assert!(s.messages.message(a, 1).await.unwrap().is_none());
    assert!(
        s.messages.message(a, 3).await.unwrap().is_some(),
        "May stays"
    );
    assert!(dek(a, "m2026-05").await.is_some());
    assert!(dek(b, "m2026-01").await.is_some(), "held");
    assert!(
        shred().await.is_empty(),
        "nothing more while the hold holds"
    );
    // The hold ends: b's January goes too.
    assert!(
        s.cases
            .end_hold(
                hold.id,
                T0.plus(std::time::Duration::from_secs(10)),
                HoldEnd::Released
            )
            .await
            .unwrap()
    );
    let gone = shred().await;
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].conversation_id, gone[0].messages), (b, 1));
    assert!(dek(b, "m2026-01").await.is_none());
    // Day epochs are cut by their own label, oldest first, at most `limit` a commit.
    put(a, "d2026-02-27", 1).await;
    put(a, "d2026-02-28", 1).await;
    put(a, "d2026-03-01", 1).await;
    for day in ["d2026-02-27", "d2026-02-28"] {
        let gone = shred_at_most(1).await;
        assert_eq!(
            gone.iter().map(|g| g.epoch.as_str()).collect::<Vec<_>>(),
            [day]
        );
    }
    assert!(shred().await.is_empty(), "the cut-off's own day stays");
}

#[doc(hidden)]
pub async fn kek_sealed_things_are_found_by_version_and_replaced_only_if_unchanged(s: &Storage) {
    use custodia_store::{KekItem, KekSealedKind, KekStep, KekStepKind, KekUsage};
    let sealed = |version: u32, fill: u8| {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend([fill; 20]);
        bytes
    };
    // 7 data keys under version 1 (more than one batch of 3), 2 under version 2.
    let conv = ConversationId::new();
    for (i, version) in [1, 1, 1, 2, 1, 1, 2, 1, 1].into_iter().enumerate() {
        let epoch = Epoch::from_label(format!("d2026-11-{:02}", i + 1));
        let dek = WrappedDek {
            kek_version: version,
            bytes: vec![u8::try_from(i).unwrap(); 40],
        };
        s.deks.put_wrapped_dek(conv, &epoch, dek).await.unwrap();
    }
    let staff = StaffRecord {
        totp: SealedTotp {
            kek_version: 1,
            bytes: vec![9; 40],
        },
        ..unenrolled("kekstaff", 1, Vec::new())
    };
    s.staff.create_staff(staff.clone()).await.unwrap();
    // Not enrolled yet: no TOTP secret, nothing sealed.
    s.staff
        .create_staff(unenrolled("kekpending", 2, Vec::new()))
        .await
        .unwrap();
    let u = users(s, &["kek1", "kek2"]).await;
    let chat = conversation(s, &u, ConversationKind::Direct).await;
    let case = CaseRecord {
        id: CaseId::new(),
        kind: CaseKind::Report,
        conversation_id: chat,
        reporter: Some(u[0]),
        category: None,
        comment: Some(SealedBody(sealed(1, 7))),
        reported: vec![2],
        evidence: vec![
            custodia_store::EvidenceRecord {
                seq: 1,
                sender: u[1],
                sent_at: T0,
                claimed: Some(SealedBody(sealed(2, 1))),
                verified: true,
            },
            custodia_store::EvidenceRecord {
                seq: 2,
                sender: u[1],
                sent_at: T0,
                claimed: Some(SealedBody(sealed(1, 2))),
                verified: true,
            },
            custodia_store::EvidenceRecord {
                seq: 3,
                sender: u[1],
                sent_at: T0,
                claimed: None,
                verified: false,
            },
        ],
        scope: (1, 3),
        reference: None,
        opened_by: None,
        nondisclosure_until: None,
        opened_at: T0,
        priority: custodia_core::CasePriority::Normal,
        files: Vec::new(),
    };
    s.cases.create_case(case.clone()).await.unwrap();

    let mut usage = s.deks.kek_usage().await.unwrap();
    usage.sort_by_key(|u| (u.kind, u.version));
    let u = |kind, version, count| KekUsage {
        kind,
        version,
        count,
    };
    assert_eq!(
        usage,
        vec![
            u(KekSealedKind::Dek, 1, 7),
            u(KekSealedKind::Dek, 2, 2),
            u(KekSealedKind::Totp, 1, 1),
            u(KekSealedKind::CaseComment, 1, 1),
            u(KekSealedKind::Evidence, 1, 1),
            u(KekSealedKind::Evidence, 2, 1),
        ],
        "counted by kind and version; a row without a sealed value is not counted"
    );

    // Paging through the data keys not under version 2, three at a time, in key order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .deks
            .kek_sealed_not_under(KekSealedKind::Dek, 2, after.clone(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.item.clone());
        seen.extend(page);
    }
    assert_eq!(seen.len(), 7, "every data key under version 1, once");
    assert!(seen.iter().all(|k| k.sealed.kek_version == 1));
    let KekItem::Dek { epoch, .. } = &seen[0].item else {
        panic!("a data key is not a data key: {:?}", seen[0].item)
    };
    assert_eq!(epoch.as_str(), "d2026-11-01");

    // Replacing: only while the stored value is the one read.
    let first = seen[0].clone();
    let new = WrappedDek {
        kek_version: 2,
        bytes: vec![0xAA; 40],
    };
    assert!(
        s.deks
            .replace_kek_sealed(first.clone(), new.clone())
            .await
            .unwrap()
    );
    assert!(
        !s.deks.replace_kek_sealed(first, new.clone()).await.unwrap(),
        "a value that changed since it was read is not replaced"
    );
    assert_eq!(
        s.deks
            .wrapped_dek(conv, &Epoch::from_label("d2026-11-01".into()))
            .await
            .unwrap(),
        Some(new)
    );

    // The prefixed kinds: the version is the value's first four bytes.
    let evidence = s
        .deks
        .kek_sealed_not_under(KekSealedKind::Evidence, 2, None, 10)
        .await
        .unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(
        evidence[0].item,
        KekItem::Evidence {
            case: case.id,
            seq: 2
        }
    );
    let resealed = WrappedDek {
        kek_version: 2,
        bytes: sealed(2, 5),
    };
    assert!(
        s.deks
            .replace_kek_sealed(evidence[0].clone(), resealed.clone())
            .await
            .unwrap()
    );
    let totp = s
        .deks
        .kek_sealed_not_under(KekSealedKind::Totp, 2, None, 10)
        .await
        .unwrap();
    assert_eq!(totp.len(), 1);
    assert!(
        s.deks
            .replace_kek_sealed(
                totp[0].clone(),
                WrappedDek {
                    kek_version: 2,
                    bytes: vec![8; 40]
                }
            )
            .await
            .unwrap()
    );
    let stored = s.staff.staff_by_id(staff.id).await.unwrap().unwrap();
    assert_eq!(stored.totp.kek_version, 2);
    assert_eq!(stored.totp.bytes, vec![8; 40]);
    let stored = s.cases.case(case.id).await.unwrap().unwrap();
    assert_eq!(
        stored.evidence[1].claimed,
        Some(SealedBody(resealed.bytes)),
        "the case shows the resealed text"
    );

    // Steps: each step of each version once; the log index recorded after.
    let step = |kind, version| KekStep {
        kind,
        version,
        at: T0,
        detail: "data_keys=7".into(),
        log_index: None,
    };
    assert!(
        s.deks
            .add_kek_step(step(KekStepKind::Rotated, 2))
            .await
            .unwrap()
    );
    assert!(
        !s.deks
            .add_kek_step(step(KekStepKind::Rotated, 2))
            .await
            .unwrap()
    );
    assert!(
        s.deks
            .add_kek_step(step(KekStepKind::Rewrapped, 2))
            .await
            .unwrap()
    );
    s.deks
        .kek_step_logged(KekStepKind::Rotated, 2, 41)
        .await
        .unwrap();
    let steps = s.deks.kek_steps().await.unwrap();
    assert_eq!(steps.len(), 2);
    let rotated = steps
        .iter()
        .find(|s| s.kind == KekStepKind::Rotated)
        .unwrap();
    assert_eq!(rotated.log_index, Some(41));
    assert_eq!(rotated.detail, "data_keys=7");
}
