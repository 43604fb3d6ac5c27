//! Access requests against a pinned clock: pending requests expire (24 h; 1 h for
//! emergencies), grants end with their window, an emergency grant's second review is
//! shown overdue after 24 h, and broad scopes need one more approval.

mod common;

use std::time::Duration;

use common::Fixture;
use custodia_core::{Clock, DataTier, ReasonCode, ReportCategory, RequestStatus, StaffRole};
use custodia_governance::{NewRequest, Report, ReportedMessage};
use custodia_service::ServiceError;

const HOUR: Duration = Duration::from_secs(3600);

fn ask(
    case: custodia_core::CaseId,
    reason: ReasonCode,
    seqs: (u64, u64),
    duration: Duration,
) -> NewRequest {
    NewRequest {
        case_id: case,
        reason,
        seqs,
        tier: DataTier::Content,
        duration,
        justification: "needed for the case".into(),
    }
}

async fn report_case(f: &Fixture, gap: Duration, n: u64) -> custodia_core::CaseId {
    let alice = f.user("alice").await;
    let bob = f.user("bob").await;
    let chat = f.chat(&alice, &bob, n, gap).await;
    f.gov
        .report(
            &bob,
            Report {
                conversation_id: chat,
                messages: vec![ReportedMessage {
                    seq: n,
                    text: None,
                    franking_key: None,
                }],
                category: ReportCategory::Harassment,
                comment: None,
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn pending_requests_expire_after_a_day_or_an_hour_for_emergencies() {
    let f = Fixture::new().await;
    let staff = f
        .staff(&[
            ("mod", StaffRole::Moderator),
            ("sen", StaffRole::SeniorModerator),
            ("lex", StaffRole::LegalOfficer),
        ])
        .await;
    let (m, sen, lex) = (&staff[0], &staff[1], &staff[2]);
    let case = report_case(&f, Duration::from_secs(1), 3).await;
    let review = f
        .gov
        .request_access(m, ask(case, ReasonCode::ReportReview, (1, 3), HOUR))
        .await
        .unwrap();
    let legal = legal_case(&f, lex).await;
    // An emergency grant is short: at most 4 hours, the least the emergency needs.
    let too_long = f
        .gov
        .request_access(
            sen,
            ask(
                legal,
                ReasonCode::EmergencyDisclosure,
                (1, 3),
                4 * HOUR + Duration::from_secs(1),
            ),
        )
        .await;
    assert!(
        matches!(&too_long, Err(ServiceError::Rejected(why)) if why.contains("4 hours")),
        "{too_long:?}"
    );
    let emergency = f
        .gov
        .request_access(
            sen,
            ask(legal, ReasonCode::EmergencyDisclosure, (1, 3), 4 * HOUR),
        )
        .await
        .unwrap();

    f.clock.advance(Duration::from_secs(61 * 60));
    let status = async |id| f.gov.request(m, id).await.unwrap().status;
    assert_eq!(status(emergency.record.id).await, RequestStatus::Expired);
    assert_eq!(status(review.record.id).await, RequestStatus::Pending);
    assert!(matches!(
        f.gov
            .decide(lex, emergency.record.id, true, "too late".into())
            .await,
        Err(ServiceError::Rejected(_))
    ));
    f.clock.advance(Duration::from_secs(23 * 3600));
    assert_eq!(status(review.record.id).await, RequestStatus::Expired);
    assert!(matches!(
        f.gov
            .decide(sen, review.record.id, true, "too late".into())
            .await,
        Err(ServiceError::Rejected(_))
    ));
}

#[tokio::test]
async fn a_grant_ends_with_its_window() {
    let f = Fixture::new().await;
    let staff = f
        .staff(&[
            ("mod", StaffRole::Moderator),
            ("sen", StaffRole::SeniorModerator),
        ])
        .await;
    let case = report_case(&f, Duration::from_secs(1), 2).await;
    let r = f
        .gov
        .request_access(&staff[0], ask(case, ReasonCode::ReportReview, (1, 2), HOUR))
        .await
        .unwrap();
    f.gov
        .decide(&staff[1], r.record.id, true, "credible".into())
        .await
        .unwrap();
    assert_eq!(
        f.gov
            .read_grant(&staff[0], r.record.id)
            .await
            .unwrap()
            .messages
            .len(),
        2
    );
    f.clock.advance(HOUR);
    match f.gov.read_grant(&staff[0], r.record.id).await {
        Err(ServiceError::Forbidden(why)) => assert!(why.contains("expired"), "{why}"),
        other => panic!("read after the window: {other:?}"),
    }
    assert_eq!(
        f.gov.request(&staff[0], r.record.id).await.unwrap().status,
        RequestStatus::Expired
    );
}

#[tokio::test]
async fn an_emergency_grant_needs_a_second_review_within_a_day() {
    let f = Fixture::new().await;
    let staff = f
        .staff(&[
            ("lex", StaffRole::LegalOfficer),
            ("sen", StaffRole::SeniorModerator),
            ("lex2", StaffRole::LegalOfficer),
        ])
        .await;
    let (lex, sen, lex2) = (&staff[0], &staff[1], &staff[2]);
    let case = report_case(&f, Duration::from_secs(1), 3).await;
    f.gov.case(lex, case).await.unwrap();
    let legal = legal_case(&f, lex).await;
    let r = f
        .gov
        .request_access(
            lex,
            ask(legal, ReasonCode::EmergencyDisclosure, (1, 3), 4 * HOUR),
        )
        .await
        .unwrap();
    let now = f
        .gov
        .decide(sen, r.record.id, true, "imminent danger".into())
        .await
        .unwrap();
    assert_eq!(now.status, RequestStatus::Approved, "one approver now");
    assert!(!now.second_review_overdue);
    // The 4-hour grant has ended by the day after; its review is overdue all the same.
    f.clock.advance(25 * HOUR);
    let late = f.gov.request(lex, r.record.id).await.unwrap();
    assert_eq!(late.status, RequestStatus::Expired);
    assert!(late.second_review_overdue);
    let reviewed = f
        .gov
        .decide(lex2, r.record.id, true, "reviewed, justified".into())
        .await
        .unwrap();
    assert_eq!(reviewed.status, RequestStatus::Expired);
    assert!(!reviewed.second_review_overdue);

    // A second review that disagrees revokes the grant.
    let r2 = f
        .gov
        .request_access(
            lex,
            ask(legal, ReasonCode::EmergencyDisclosure, (1, 3), 4 * HOUR),
        )
        .await
        .unwrap();
    f.gov
        .decide(sen, r2.record.id, true, "imminent".into())
        .await
        .unwrap();
    let denied = f
        .gov
        .decide(lex2, r2.record.id, false, "not an emergency".into())
        .await
        .unwrap();
    assert_eq!(denied.status, RequestStatus::Revoked);
    assert!(matches!(
        f.gov.read_grant(lex, r2.record.id).await,
        Err(ServiceError::Forbidden(_))
    ));
}

#[tokio::test]
async fn broad_scopes_need_one_more_approval() {
    let f = Fixture::new().await;
    let staff = f
        .staff(&[
            ("mod", StaffRole::Moderator),
            ("sen", StaffRole::SeniorModerator),
            ("sen2", StaffRole::SeniorModerator),
        ])
        .await;
    // Eleven messages four days apart: the case covers 40 days.
    let case = report_case(&f, 24 * 4 * HOUR, 11).await;
    let broad = f
        .gov
        .request_access(
            &staff[0],
            ask(case, ReasonCode::ReportReview, (1, 11), HOUR),
        )
        .await
        .unwrap();
    assert!(broad.record.broad);
    assert_eq!(broad.record.required, 2);
    let one = f
        .gov
        .decide(&staff[1], broad.record.id, true, "ok".into())
        .await
        .unwrap();
    assert_eq!(one.status, RequestStatus::Pending);
    let two = f
        .gov
        .decide(&staff[2], broad.record.id, true, "ok".into())
        .await
        .unwrap();
    assert_eq!(two.status, RequestStatus::Approved);
    // The last week alone is not broad.
    let narrow = f
        .gov
        .request_access(
            &staff[0],
            ask(case, ReasonCode::ReportReview, (10, 11), HOUR),
        )
        .await
        .unwrap();
    assert!(!narrow.record.broad);
    assert_eq!(narrow.record.required, 1);
}

#[tokio::test]
async fn a_requester_whose_role_changed_reads_no_more() {
    let f = Fixture::new().await;
    let (admin, auditor) = f.founders().await;
    let mut staff = Vec::new();
    for (name, role) in [
        ("mod", StaffRole::Moderator),
        ("sen", StaffRole::SeniorModerator),
    ] {
        let p = f.add_staff(&admin, &auditor, name, role).await;
        staff.push((p.staff_id, p));
    }
    let case = report_case(&f, Duration::from_secs(1), 2).await;
    let (mod_id, m) = &staff[0];
    let r = f
        .gov
        .request_access(m, ask(case, ReasonCode::ReportReview, (1, 2), HOUR))
        .await
        .unwrap();
    f.gov
        .decide(&staff[1].1, r.record.id, true, "ok".into())
        .await
        .unwrap();
    f.gov.read_grant(m, r.record.id).await.unwrap();
    let change = f
        .gov
        .change_staff(&admin, *mod_id, StaffRole::Admin, true)
        .await
        .unwrap();
    f.gov
        .decide_staff_change(&auditor, change.record.id, true)
        .await
        .unwrap();
    let now_admin = custodia_governance::StaffPrincipal {
        role: StaffRole::Admin,
        ..m.clone()
    };
    assert!(matches!(
        f.gov.read_grant(&now_admin, r.record.id).await,
        Err(ServiceError::Forbidden(_))
    ));
}

#[tokio::test]
async fn nobody_approves_a_request_of_someone_they_sponsored() {
    // Two admins: one proposes a senior moderator and a moderator, the other approves.
    // Later the proposing admin becomes a senior moderator (approved by the other admin):
    // they may not approve the moderator they brought in.
    let f = Fixture::new().await;
    let (admin, auditor) = f.founders().await;
    let ada = f.add_staff(&admin, &auditor, "ada", StaffRole::Admin).await;
    let m = f.add_staff(&admin, &ada, "mod", StaffRole::Moderator).await;
    let honest = f
        .add_staff(&ada, &admin, "sen", StaffRole::SeniorModerator)
        .await;
    let change = f
        .gov
        .change_staff(&ada, admin.staff_id, StaffRole::SeniorModerator, true)
        .await
        .unwrap();
    f.gov
        .decide_staff_change(&auditor, change.record.id, true)
        .await
        .expect_err("two admins: an auditor does not decide");
    f.gov
        .decide_staff_change(&ada, change.record.id, true)
        .await
        .expect_err("nobody decides their own proposal");
    let bo = f
        .add_staff(&ada, &admin, "bob_admin", StaffRole::Admin)
        .await;
    f.gov
        .decide_staff_change(&bo, change.record.id, true)
        .await
        .unwrap();
    let former_admin = custodia_governance::StaffPrincipal {
        role: StaffRole::SeniorModerator,
        ..admin.clone()
    };
    let case = report_case(&f, Duration::from_secs(1), 2).await;
    let r = f
        .gov
        .request_access(&m, ask(case, ReasonCode::ReportReview, (1, 2), HOUR))
        .await
        .unwrap();
    assert!(
        !r.record.approvers.contains(&admin.staff_id),
        "a sponsor is not among the frozen approvers"
    );
    assert!(r.record.approvers.contains(&honest.staff_id));
    assert!(matches!(
        f.gov
            .decide(&former_admin, r.record.id, true, "ok".into())
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    f.gov
        .decide(&honest, r.record.id, true, "ok".into())
        .await
        .unwrap();
}

#[tokio::test]
async fn staff_new_in_an_approving_role_decide_nothing_for_the_first_days() {
    let f = Fixture::with_config(custodia_governance::GovernanceConfig::default()).await;
    let (admin, auditor) = f.founders().await;
    let m = f
        .add_staff(&admin, &auditor, "mod", StaffRole::Moderator)
        .await;
    let sen = f
        .add_staff(&admin, &auditor, "sen", StaffRole::SeniorModerator)
        .await;
    let case = report_case(&f, Duration::from_secs(1), 2).await;
    assert!(
        matches!(
            f.gov
                .request_access(&m, ask(case, ReasonCode::ReportReview, (1, 2), HOUR))
                .await,
            Err(ServiceError::Rejected(_))
        ),
        "a senior moderator of one day is not an eligible approver"
    );
    f.clock.advance(Duration::from_secs(3 * 24 * 3600));
    let r = f
        .gov
        .request_access(&m, ask(case, ReasonCode::ReportReview, (1, 2), HOUR))
        .await
        .unwrap();
    assert_eq!(r.record.approvers, vec![sen.staff_id]);
    f.gov
        .decide(&sen, r.record.id, true, "ok".into())
        .await
        .unwrap();
}

/// The legal case of an emergency request from the US naming alice (whose conversation
/// with bob holds messages 1-3), entered, accepted and produced by `lex`.
async fn legal_case(
    f: &Fixture,
    lex: &custodia_governance::StaffPrincipal,
) -> custodia_core::CaseId {
    let now = f.clock.now();
    let day = Duration::from_secs(86_400);
    let received = f
        .gov
        .receive_legal_request(
            lex,
            custodia_governance::NewLegalRequest {
                agency_name: "FBI".into(),
                agency_country: custodia_core::Country::parse("US").unwrap(),
                agency_subdivision: None,
                officer_name: "SA Doe".into(),
                officer_badge: "42".into(),
                officer_email: "doe@fbi.example".into(),
                process: custodia_core::LegalProcessType::EmergencyRequest,
                court: None,
                targets: vec!["alice".into()],
                categories: vec![custodia_core::DataCategory::Content],
                period: (
                    custodia_core::Timestamp::from_millis(now.as_millis() - 86_400_000),
                    now.plus(day),
                ),
                nondisclosure: None,
                emergency_basis: Some("a threat to a life".into()),
                documents: Vec::new(),
                follows_up: None,
            },
        )
        .await
        .unwrap();
    let id = received.record.id;
    f.gov
        .review_legal_request(
            lex,
            id,
            custodia_governance::LegalDecision {
                outcome: custodia_core::LegalOutcome::Full,
                reason: None,
                narrowing: None,
                accepted: Vec::new(),
            },
        )
        .await
        .unwrap();
    f.gov.produce(lex, id).await.unwrap()[0].record.case_id
}
