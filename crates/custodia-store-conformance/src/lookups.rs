//! The lookups, lists and removals the services rely on: each answers from what was
//! stored, in the order its trait documents, and a removal happens once.

use custodia_core::{
    AttachmentId, CaseId, CaseKind, ConversationKind, Country, DataCategory, DataTier, Epoch,
    LegalOutcome, LegalProcessType, LegalRequestId, MemberRole, ReasonCode, RejectionReason,
    RequestId, RequestStatus, SessionId, StaffId, StaffRole, Timestamp, UserId, Username,
};
use custodia_store::{
    AccessRequestRecord, AttachmentRecord, CaseRecord, LegalRequestRecord, NoticeRelease,
    SealedTotp, SessionRecord, StaffRecord, StaffSessionRecord, Storage, TokenHash,
};

use crate::{T0, conversation, message, users};

fn at(secs: u64) -> Timestamp {
    T0.plus(std::time::Duration::from_secs(secs))
}

#[doc(hidden)]
pub async fn users_are_found_by_id_and_flags_stick(s: &Storage) {
    let [a, b] = users(s, &["fay", "fox"]).await[..] else {
        unreachable!()
    };
    let found = s.accounts.user_by_id(a).await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.username.as_str()),
        (a, "fay"),
        "a user by id"
    );
    assert!(
        s.accounts
            .user_by_id(UserId::new())
            .await
            .unwrap()
            .is_none()
    );

    assert!(!s.attachments.is_flagged(a).await.unwrap());
    s.attachments
        .flag_user(a, "hash list".into(), T0)
        .await
        .unwrap();
    s.attachments
        .flag_user(a, "again".into(), at(1))
        .await
        .unwrap();
    assert!(
        s.attachments.is_flagged(a).await.unwrap(),
        "flagged, and stays so"
    );
    assert!(
        !s.attachments.is_flagged(b).await.unwrap(),
        "only that member"
    );
}

#[doc(hidden)]
pub async fn a_users_sessions_are_listed_newest_first(s: &Storage) {
    let [u, other] = users(s, &["sid", "sol"]).await[..] else {
        unreachable!()
    };
    let session = |user_id, k: u8| SessionRecord {
        id: SessionId::new(),
        user_id,
        token_hash: TokenHash([k; 32]),
        device: format!("device {k}"),
        created_at: at(u64::from(k)),
        expires_at: at(3_600),
    };
    let (old, new) = (session(u, 1), session(u, 2));
    for s_ in [&old, &new, &session(other, 3)] {
        s.sessions.create_session(s_.clone()).await.unwrap();
    }
    let listed: Vec<SessionId> = s
        .sessions
        .sessions_of(u)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![new.id, old.id], "newest first, only theirs");
    assert!(s.sessions.delete_session(u, new.id).await.unwrap());
    assert_eq!(s.sessions.sessions_of(u).await.unwrap().len(), 1);
}

#[doc(hidden)]
pub async fn members_leave_and_read_positions_only_move_forward(s: &Storage) {
    let ids = users(s, &["mae", "max", "moe"]).await;
    let (mae, max, mo) = (ids[0], ids[1], ids[2]);
    let quiet = conversation(s, &[mae, max], ConversationKind::Direct).await;
    let group = conversation(s, &ids, ConversationKind::Group).await;

    let record = s.conversations.conversation(group).await.unwrap().unwrap();
    assert_eq!((record.id, record.kind), (group, ConversationKind::Group));
    assert!(
        s.conversations
            .conversation(custodia_core::ConversationId::new())
            .await
            .unwrap()
            .is_none()
    );
    let mut members: Vec<UserId> = s
        .conversations
        .members(group)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    members.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(members, expected);
    let one = s.conversations.member(group, mo).await.unwrap().unwrap();
    assert_eq!(
        (one.user_id, one.username.as_str(), one.role, one.read_seq),
        (mo, "moe", MemberRole::Member, 0)
    );

    for k in 0..3 {
        let mut m = message(group, mae, &format!("g{k}"));
        m.sent_at = at(10 + k);
        s.messages.append(m).await.unwrap();
    }
    // Read positions: forward only, never past the newest message.
    assert_eq!(s.conversations.mark_read(group, max, 2).await.unwrap(), 2);
    assert_eq!(
        s.conversations.mark_read(group, max, 1).await.unwrap(),
        2,
        "never backwards"
    );
    assert_eq!(
        s.conversations.mark_read(group, max, 99).await.unwrap(),
        3,
        "clamped to the newest"
    );
    assert_eq!(
        s.conversations
            .member(group, max)
            .await
            .unwrap()
            .unwrap()
            .read_seq,
        3
    );

    // A member's conversations, most recent activity first, with their position.
    let summaries = s.conversations.conversations_of(max).await.unwrap();
    let order: Vec<_> = summaries.iter().map(|c| c.conversation.id).collect();
    assert_eq!(order, vec![group, quiet], "most recent first");
    assert_eq!(summaries[0].read_seq, 3);
    assert_eq!(summaries[0].member_count, 3);
    assert_eq!(
        summaries[0].last_message.as_ref().map(|m| m.seq),
        Some(3),
        "with the newest message"
    );
    assert!(summaries[1].last_message.is_none());

    assert!(s.conversations.remove_member(group, mo).await.unwrap());
    assert!(
        !s.conversations.remove_member(group, mo).await.unwrap(),
        "removed once"
    );
    assert!(s.conversations.member(group, mo).await.unwrap().is_none());
    assert_eq!(s.conversations.members(group).await.unwrap().len(), 2);
    assert!(
        s.conversations
            .conversations_of(mo)
            .await
            .unwrap()
            .is_empty()
    );
}

fn staff(name: &str, created: u64) -> StaffRecord {
    StaffRecord {
        id: StaffId::new(),
        username: Username::parse(name).unwrap(),
        password_hash: "$argon2id$test".into(),
        totp: SealedTotp {
            kek_version: 1,
            bytes: vec![3; 40],
        },
        role: StaffRole::Moderator,
        active: true,
        created_at: at(created),
        role_since: at(created),
        sponsors: Vec::new(),
        enrolment: None,
    }
}

#[doc(hidden)]
pub async fn staff_are_listed_oldest_first_and_their_sessions_end(s: &Storage) {
    let (later, earlier) = (staff("lee", 20), staff("ada", 10));
    s.staff.create_staff(later.clone()).await.unwrap();
    s.staff.create_staff(earlier.clone()).await.unwrap();
    let listed: Vec<StaffId> = s
        .staff
        .all_staff()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![earlier.id, later.id], "oldest first");

    let session = StaffSessionRecord {
        id: SessionId::new(),
        staff_id: earlier.id,
        token_hash: TokenHash([5; 32]),
        created_at: T0,
        expires_at: at(900),
    };
    s.staff.create_staff_session(session.clone()).await.unwrap();
    assert!(s.staff.delete_staff_session(session.id).await.unwrap());
    assert!(
        !s.staff.delete_staff_session(session.id).await.unwrap(),
        "ended once"
    );
    assert!(
        s.staff
            .staff_session_by_token(&TokenHash([5; 32]))
            .await
            .unwrap()
            .is_none()
    );
}

fn case(opened: u64) -> CaseRecord {
    CaseRecord {
        id: CaseId::new(),
        kind: CaseKind::Report,
        conversation_id: custodia_core::ConversationId::new(),
        reporter: None,
        category: None,
        comment: None,
        reported: vec![1],
        evidence: Vec::new(),
        scope: (1, 1),
        reference: None,
        opened_by: None,
        nondisclosure_until: None,
        opened_at: at(opened),
        priority: custodia_core::CasePriority::Normal,
        files: Vec::new(),
    }
}

fn request(case: &CaseRecord, created: u64) -> AccessRequestRecord {
    AccessRequestRecord {
        id: RequestId::new(),
        case_id: case.id,
        requester: StaffId::new(),
        requester_role: StaffRole::Moderator,
        reason: ReasonCode::ReportReview,
        conversation_id: case.conversation_id,
        seqs: (1, 1),
        tier: DataTier::Content,
        duration_ms: 60_000,
        justification: format!("request {created}"),
        created_at: at(created),
        pending_until: at(created + 3_600),
        broad: false,
        required: 1,
        approvers: vec![StaffId::new()],
        status: RequestStatus::Pending,
        decisions: Vec::new(),
        granted: None,
    }
}

#[doc(hidden)]
pub async fn cases_are_listed_newest_first_with_their_requests(s: &Storage) {
    let (old, mut new) = (case(10), case(20));
    new.nondisclosure_until = Some(at(30 * 86_400));
    new.priority = custodia_core::CasePriority::High;
    new.files = vec![
        custodia_core::AttachmentId::new(),
        custodia_core::AttachmentId::new(),
    ];
    s.cases.create_case(old.clone()).await.unwrap();
    s.cases.create_case(new.clone()).await.unwrap();
    let listed: Vec<CaseId> = s
        .cases
        .cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, vec![new.id, old.id], "newest first");
    assert_eq!(
        s.cases.case(new.id).await.unwrap(),
        Some(new.clone()),
        "kept whole, its non-disclosure order, priority and files included"
    );

    let (second, first) = (request(&old, 40), request(&old, 30));
    for r in [&second, &first, &request(&new, 50)] {
        s.cases.create_request(r.clone()).await.unwrap();
    }
    let of_old: Vec<RequestId> = s
        .cases
        .requests_of_case(old.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        of_old,
        vec![first.id, second.id],
        "oldest first, only that case's"
    );
    assert!(
        s.cases
            .requests_of_case(CaseId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[doc(hidden)]
pub async fn blocks_are_listed_and_connections_end(s: &Storage) {
    let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
    s.safety.block(a, b, T0).await.unwrap();
    s.safety.block(a, c, at(1)).await.unwrap();
    assert_eq!(s.safety.blocked_by(a).await.unwrap(), vec![b, c]);
    assert!(s.safety.blocked_by(b).await.unwrap().is_empty(), "one way");

    s.safety.request_connection(b, c, T0).await.unwrap();
    assert!(
        s.safety
            .request_connection(c, b, T0)
            .await
            .unwrap()
            .accepted
    );
    assert!(
        s.safety.remove_connection(c, b).await.unwrap(),
        "either side ends it"
    );
    assert!(
        !s.safety.remove_connection(b, c).await.unwrap(),
        "ended once"
    );
    assert!(s.safety.connection(b, c).await.unwrap().is_none());
    // A request not yet accepted is withdrawn the same way.
    s.safety.request_connection(b, c, T0).await.unwrap();
    assert!(s.safety.remove_connection(b, c).await.unwrap());
    assert!(s.safety.connection(b, c).await.unwrap().is_none());
}

#[doc(hidden)]
pub async fn an_attachment_is_kept_whole_and_found_by_id(s: &Storage) {
    let ids = users(s, &["ari", "abe"]).await;
    let conv = conversation(s, &ids, ConversationKind::Direct).await;
    let record = AttachmentRecord {
        id: AttachmentId::new(),
        conversation_id: conv,
        uploader: ids[0],
        epoch: Epoch::from_label("m2026-11".into()),
        size: 5,
        content_type: "image/png".into(),
        sealed_key: vec![7; 60],
        key_commitment: [8; 32],
        blob: vec![9; 77],
        created_at: T0,
        preserved: false,
    };
    s.attachments.put_attachment(record.clone()).await.unwrap();
    let found = s.attachments.attachment(record.id).await.unwrap().unwrap();
    assert_eq!(
        (
            found.id,
            found.conversation_id,
            found.uploader,
            found.epoch.clone(),
            found.size,
            found.content_type.as_str(),
            found.sealed_key.as_slice(),
            found.key_commitment,
            found.blob.as_slice(),
            found.created_at,
            found.preserved,
        ),
        (
            record.id,
            conv,
            ids[0],
            record.epoch.clone(),
            5,
            "image/png",
            &[7; 60][..],
            [8; 32],
            &[9; 77][..],
            T0,
            false,
        )
    );
    assert!(
        s.attachments
            .attachment(AttachmentId::new())
            .await
            .unwrap()
            .is_none()
    );
}

#[doc(hidden)]
pub async fn a_working_store_answers_a_ping(s: &Storage) {
    s.health.ping().await.unwrap();
    // And keeps answering after writes.
    users(s, &["pia"]).await;
    s.health.ping().await.unwrap();
}

#[doc(hidden)]
pub async fn access_notices_are_a_members_own_and_stored_once_per_entry(s: &Storage) {
    use custodia_core::AccessNoticeId;
    use custodia_store::AccessNoticeRecord;
    let (alice, bob) = (UserId::new(), UserId::new());
    let notice = |user, index: u64, read: u64| AccessNoticeRecord {
        id: AccessNoticeId::new(),
        user_id: user,
        conversation_id: custodia_core::ConversationId::new(),
        read_at: at(read),
        role: StaffRole::Moderator,
        reason: ReasonCode::ReportReview,
        case_id: CaseId::new(),
        messages: 3,
        span: (at(1), at(2)),
        log_index: index,
        checkpoint: "example.org/audit\n9\nroot\n\n— sig\n".into(),
        proof: vec![[7; 32], [8; 32]],
        deferred_until: None,
        deferred_review: None,
        released_at: None,
    };
    let first = notice(alice, 5, 10);
    s.cases
        .add_access_notices(vec![first.clone(), notice(bob, 5, 10)])
        .await
        .unwrap();
    // The same read notified again (a retry) changes nothing.
    s.cases
        .add_access_notices(vec![notice(alice, 5, 10)])
        .await
        .unwrap();
    let later = notice(alice, 9, 20);
    s.cases
        .add_access_notices(vec![later.clone()])
        .await
        .unwrap();
    assert_eq!(
        s.cases.access_notices_of(alice).await.unwrap(),
        vec![later, first],
        "newest first, whole, once per entry"
    );
    assert_eq!(s.cases.access_notices_of(bob).await.unwrap().len(), 1);
    assert!(
        s.cases
            .access_notices_of(UserId::new())
            .await
            .unwrap()
            .is_empty()
    );

    // Deferred: invisible until released, released once when its time has come.
    let carol = UserId::new();
    let deferred = AccessNoticeRecord {
        deferred_until: Some(at(1_000)),
        ..notice(carol, 11, 30)
    };
    s.cases
        .add_access_notices(vec![deferred.clone()])
        .await
        .unwrap();
    assert!(s.cases.access_notices_of(carol).await.unwrap().is_empty());
    assert!(
        s.cases
            .release_access_notices(NoticeRelease::Due, at(999))
            .await
            .unwrap()
            .is_empty()
    );
    let released = s
        .cases
        .release_access_notices(NoticeRelease::Due, at(1_000))
        .await
        .unwrap();
    assert_eq!(
        released,
        vec![AccessNoticeRecord {
            released_at: Some(at(1_000)),
            ..deferred
        }]
    );
    assert!(
        s.cases
            .release_access_notices(NoticeRelease::Due, at(5_000))
            .await
            .unwrap()
            .is_empty(),
        "released once"
    );
    assert_eq!(s.cases.access_notices_of(carol).await.unwrap(), released);

    // An order extended: the case and its pending notices move together.
    let k = crate::lookups::case(10);
    s.cases.create_case(k.clone()).await.unwrap();
    let dave = UserId::new();
    let pending = AccessNoticeRecord {
        case_id: k.id,
        deferred_until: Some(at(2_000)),
        ..notice(dave, 12, 40)
    };
    s.cases.add_access_notices(vec![pending]).await.unwrap();
    assert!(s.cases.extend_nondisclosure(k.id, at(9_000)).await.unwrap());
    assert!(
        !s.cases
            .extend_nondisclosure(CaseId::new(), at(9_000))
            .await
            .unwrap()
    );
    assert_eq!(
        s.cases
            .case(k.id)
            .await
            .unwrap()
            .unwrap()
            .nondisclosure_until,
        Some(at(9_000))
    );
    assert!(
        s.cases
            .release_access_notices(NoticeRelease::Due, at(2_000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.cases
            .release_access_notices(NoticeRelease::Due, at(9_000))
            .await
            .unwrap()
            .len(),
        1
    );
    // Held for an emergency's second review: released when it is decided, once.
    let erin = UserId::new();
    let request = RequestId::new();
    s.cases
        .add_access_notices(vec![AccessNoticeRecord {
            deferred_review: Some(request),
            ..notice(erin, 13, 50)
        }])
        .await
        .unwrap();
    assert!(s.cases.access_notices_of(erin).await.unwrap().is_empty());
    assert!(
        s.cases
            .release_access_notices(NoticeRelease::Due, at(99_999))
            .await
            .unwrap()
            .is_empty(),
        "not by time"
    );
    assert!(
        s.cases
            .release_access_notices(NoticeRelease::Review(RequestId::new()), at(60))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.cases
            .release_access_notices(NoticeRelease::Review(request), at(60))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.cases
            .release_access_notices(NoticeRelease::Review(request), at(61))
            .await
            .unwrap()
            .is_empty(),
        "once"
    );
    assert_eq!(s.cases.access_notices_of(erin).await.unwrap().len(), 1);

    // Three deferred notices were released (carol's, dave's, erin's); their releases are
    // unlogged until marked, and a notice told at once never needs one.
    let unlogged = s.cases.unlogged_releases().await.unwrap();
    let mut who: Vec<UserId> = unlogged.iter().map(|n| n.user_id).collect();
    who.sort();
    let mut expected = vec![carol, dave, erin];
    expected.sort();
    assert_eq!(who, expected);
    assert!(
        unlogged
            .windows(2)
            .all(|w| w[0].log_index <= w[1].log_index),
        "by read"
    );
    s.cases
        .mark_releases_logged(vec![unlogged[0].id, unlogged[1].id])
        .await
        .unwrap();
    let left = s.cases.unlogged_releases().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, unlogged[2].id);
    s.cases
        .mark_releases_logged(vec![left[0].id])
        .await
        .unwrap();
    assert!(s.cases.unlogged_releases().await.unwrap().is_empty());
}

/// A legal request with `targets`, received at `secs`.
fn legal_request(secs: u64, targets: Vec<custodia_store::LegalTarget>) -> LegalRequestRecord {
    LegalRequestRecord {
        id: LegalRequestId::new(),
        number: 0,
        agency: custodia_store::Agency {
            name: "Metropolitan Police Service".into(),
            country: Country::parse("GB").unwrap(),
            subdivision: Some("London".into()),
        },
        officer: custodia_store::Officer {
            name: "D. Inspector".into(),
            badge: "MPS-4411".into(),
            email: "d.inspector@met.police.uk".into(),
            domain_verified: true,
        },
        process: LegalProcessType::SearchWarrant,
        court: Some("Westminster Magistrates' Court".into()),
        targets,
        categories: vec![DataCategory::Subscriber, DataCategory::Content],
        period: (at(secs), at(secs + 86_400)),
        nondisclosure: Some(custodia_store::NondisclosureOrder {
            authority: "the court".into(),
            until: None,
        }),
        emergency_basis: None,
        received_by: StaffId::new(),
        received_at: at(secs),
        review: None,
        received_log_index: Some(secs + 6),
        documents: Vec::new(),
        follows_up: None,
    }
}

#[doc(hidden)]
pub async fn legal_requests_are_numbered_kept_whole_and_reviewed_once(s: &Storage) {
    let alice = UserId::new();
    let first = legal_request(
        1,
        vec![
            custodia_store::LegalTarget {
                given: "username:alice".into(),
                account: Some(alice),
            },
            custodia_store::LegalTarget {
                given: "account:0192f0c5-0000-7000-8000-000000000000".into(),
                account: None,
            },
        ],
    );
    let first = LegalRequestRecord {
        documents: vec![
            custodia_store::ServedDocument {
                name: "warrant 2026-114.pdf".into(),
                media_type: "application/pdf".into(),
                sha256: [7; 32],
                size: 51_200,
            },
            custodia_store::ServedDocument {
                name: "schedule.txt".into(),
                media_type: "text/plain".into(),
                sha256: [0xab; 32],
                size: 3,
            },
        ],
        ..first
    };
    let sealed = vec![
        custodia_store::SealedBody(vec![1, 2, 3]),
        custodia_store::SealedBody(vec![4; 70_000]),
    ];
    let second = LegalRequestRecord {
        nondisclosure: None,
        court: None,
        received_log_index: None,
        follows_up: Some(first.id),
        agency: custodia_store::Agency {
            subdivision: None,
            ..first.agency.clone()
        },
        ..legal_request(2, Vec::new())
    };
    assert_eq!(
        s.cases
            .add_legal_request(first.clone(), sealed.clone())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.cases
            .add_legal_request(second.clone(), Vec::new())
            .await
            .unwrap(),
        2
    );
    for (position, document) in sealed.iter().enumerate() {
        assert_eq!(
            s.cases
                .legal_document(first.id, position as u32)
                .await
                .unwrap()
                .as_ref(),
            Some(document)
        );
    }
    assert!(s.cases.legal_document(first.id, 2).await.unwrap().is_none());
    assert!(
        s.cases
            .legal_document(second.id, 0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        matches!(
            s.cases.add_legal_request(first.clone(), Vec::new()).await,
            Err(custodia_store::StoreError::Conflict)
        ),
        "an id is stored once"
    );
    let stored = s.cases.legal_request(first.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        LegalRequestRecord {
            number: 1,
            ..first.clone()
        }
    );
    let all = s.cases.legal_requests().await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.number).collect::<Vec<_>>(),
        vec![2, 1],
        "newest first"
    );
    assert_eq!(
        all[0],
        LegalRequestRecord {
            number: 2,
            ..second
        }
    );
    assert!(
        s.cases
            .legal_request(LegalRequestId::new())
            .await
            .unwrap()
            .is_none()
    );

    let review = custodia_store::LegalReview {
        outcome: LegalOutcome::Partial,
        reason: None,
        narrowing: Some("subscriber data only".into()),
        accepted: vec![DataCategory::Subscriber],
        by: StaffId::new(),
        at: at(5),
        log_index: Some(12),
    };
    assert!(
        s.cases
            .review_legal_request(first.id, review.clone())
            .await
            .unwrap()
    );
    let rejected = custodia_store::LegalReview {
        outcome: LegalOutcome::Rejected,
        reason: Some(RejectionReason::Overbroad),
        narrowing: None,
        accepted: Vec::new(),
        ..review.clone()
    };
    assert!(
        !s.cases
            .review_legal_request(first.id, rejected.clone())
            .await
            .unwrap(),
        "a review is final"
    );
    assert!(
        !s.cases
            .review_legal_request(LegalRequestId::new(), rejected.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        s.cases
            .legal_request(first.id)
            .await
            .unwrap()
            .unwrap()
            .review,
        Some(review)
    );
    let second_id = s.cases.legal_requests().await.unwrap()[0].id;
    assert!(
        s.cases
            .review_legal_request(second_id, rejected.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        s.cases
            .legal_request(second_id)
            .await
            .unwrap()
            .unwrap()
            .review,
        Some(rejected)
    );
}
