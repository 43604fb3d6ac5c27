//! The staff API: a [`Client`] pointed at the staff listener, holding a staff token.

use reqwest::Method;
use uuid::Uuid;

use crate::{Client, SdkError};
use custodia_proto::staff as wire;

impl Client {
    /// Signs a staff member in with password and TOTP code; the client keeps the token.
    pub async fn staff_sign_in(
        &mut self,
        username: &str,
        password: &str,
        code: &str,
    ) -> Result<wire::StaffSession, SdkError> {
        let body = wire::StaffSignIn {
            username: username.into(),
            password: password.into(),
            code: code.into(),
        };
        let res: wire::StaffSession = self
            .call(self.req(Method::POST, "/v1/staff/sessions").json(&body))
            .await?;
        self.token = Some(res.token.clone());
        Ok(res)
    }

    /// Ends the staff session.
    pub async fn staff_sign_out(&mut self) -> Result<(), SdkError> {
        self.call_empty(self.req(Method::DELETE, "/v1/staff/sessions/current"))
            .await?;
        self.token = None;
        Ok(())
    }

    /// The signed-in staff member.
    pub async fn staff_me(&self) -> Result<wire::StaffMember, SdkError> {
        self.call(self.req(Method::GET, "/v1/staff/me")).await
    }

    /// Every staff account (admins, auditors).
    pub async fn staff_accounts(&self) -> Result<Vec<wire::StaffMember>, SdkError> {
        self.call(self.req(Method::GET, "/v1/staff/accounts")).await
    }

    /// Proposes a staff account (admins); it exists once a second person approves.
    pub async fn staff_create(
        &self,
        username: &str,
        role: &str,
    ) -> Result<wire::StaffChange, SdkError> {
        let body = wire::CreateStaff {
            username: username.into(),
            role: role.into(),
        };
        self.call(self.req(Method::POST, "/v1/staff/accounts").json(&body))
            .await
    }

    /// Proposes a change of a staff account's role or activity (admins); a deactivation
    /// applies at once, anything else waits for a second person.
    pub async fn staff_update(
        &self,
        id: Uuid,
        role: &str,
        active: bool,
    ) -> Result<wire::StaffChange, SdkError> {
        let body = wire::UpdateStaff {
            role: role.into(),
            active,
        };
        self.call(
            self.req(Method::PATCH, &format!("/v1/staff/accounts/{id}"))
                .json(&body),
        )
        .await
    }

    /// Every proposed staff change, newest first (admins, auditors).
    pub async fn staff_changes(&self) -> Result<Vec<wire::StaffChange>, SdkError> {
        self.call(self.req(Method::GET, "/v1/staff/changes")).await
    }

    /// Decides a proposed staff change as its second person; an approved new account's
    /// enrolment code is in the answer.
    pub async fn staff_decide_change(
        &self,
        id: Uuid,
        approve: bool,
    ) -> Result<wire::StaffChangeDecided, SdkError> {
        self.call(
            self.req(Method::POST, &format!("/v1/staff/changes/{id}/decisions"))
                .json(&wire::DecideStaffChange { approve }),
        )
        .await
    }

    /// Enrols a new staff member with the code they were handed and the password they
    /// choose; returns their TOTP secret (no session needed).
    pub async fn staff_enrol(
        &self,
        username: &str,
        code: &str,
        password: &str,
    ) -> Result<wire::Enrolled, SdkError> {
        let body = wire::Enrol {
            username: username.into(),
            code: code.into(),
            password: password.into(),
        };
        self.call(self.req(Method::POST, "/v1/staff/enrolments").json(&body))
            .await
    }

    /// Changes the signed-in member's own password.
    pub async fn staff_change_password(&self, current: &str, new: &str) -> Result<(), SdkError> {
        let body = wire::ChangePassword {
            current_password: current.into(),
            new_password: new.into(),
        };
        self.call_empty(self.req(Method::POST, "/v1/staff/me/password").json(&body))
            .await
    }

    /// Replaces the signed-in member's TOTP secret; the new one is in the answer.
    pub async fn staff_reenrol_totp(&self, password: &str) -> Result<wire::Enrolled, SdkError> {
        let body = wire::ReenrolTotp {
            password: password.into(),
        };
        self.call(self.req(Method::POST, "/v1/staff/me/totp").json(&body))
            .await
    }

    /// Reports messages of a conversation by sequence number alone (a member, on the
    /// client API); staff see them unverified. Returns the case.
    pub async fn report(
        &self,
        conversation: Uuid,
        seqs: &[u64],
        category: &str,
        comment: Option<&str>,
    ) -> Result<wire::ReportResponse, SdkError> {
        let messages = seqs
            .iter()
            .map(|&seq| wire::ReportedMessage {
                seq,
                body: None,
                franking_key: None,
            })
            .collect();
        self.report_evidence(conversation, messages, category, comment)
            .await
    }

    /// Reports received messages with their text and franking keys, so staff see them
    /// verified as sent by their senders.
    pub async fn report_messages(
        &self,
        conversation: Uuid,
        messages: &[custodia_proto::Message],
        category: &str,
        comment: Option<&str>,
    ) -> Result<wire::ReportResponse, SdkError> {
        let messages = messages
            .iter()
            .map(|m| wire::ReportedMessage {
                seq: m.seq,
                body: m.body.clone(),
                franking_key: m.franking_key.clone(),
            })
            .collect();
        self.report_evidence(conversation, messages, category, comment)
            .await
    }

    /// Reports messages with whatever evidence is given.
    pub async fn report_evidence(
        &self,
        conversation: Uuid,
        messages: Vec<wire::ReportedMessage>,
        category: &str,
        comment: Option<&str>,
    ) -> Result<wire::ReportResponse, SdkError> {
        let body = wire::ReportRequest {
            messages,
            category: category.into(),
            comment: comment.map(str::to_owned),
        };
        self.call(
            self.req(
                Method::POST,
                &format!("/v1/conversations/{conversation}/reports"),
            )
            .json(&body),
        )
        .await
    }

    /// Every case (case readers).
    pub async fn cases(&self) -> Result<Vec<wire::Case>, SdkError> {
        self.call(self.req(Method::GET, "/v1/staff/cases")).await
    }

    /// One case.
    pub async fn case(&self, id: Uuid) -> Result<wire::Case, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/staff/cases/{id}")))
            .await
    }

    /// The access requests of a case.
    pub async fn case_requests(&self, id: Uuid) -> Result<Vec<wire::AccessRequest>, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/staff/cases/{id}/requests")))
            .await
    }

    /// Records that a legal case's non-disclosure order was lifted (legal officers): its
    /// deferred notices go out.
    pub async fn lift_nondisclosure(
        &self,
        case: Uuid,
        body: &wire::LiftNondisclosure,
    ) -> Result<wire::Case, SdkError> {
        self.call(
            self.req(
                Method::POST,
                &format!("/v1/staff/cases/{case}/nondisclosure/lift"),
            )
            .json(body),
        )
        .await
    }

    /// Records that a legal case's non-disclosure order was extended (legal officers).
    pub async fn extend_nondisclosure(
        &self,
        case: Uuid,
        body: &wire::ExtendNondisclosure,
    ) -> Result<wire::Case, SdkError> {
        self.call(
            self.req(
                Method::POST,
                &format!("/v1/staff/cases/{case}/nondisclosure"),
            )
            .json(body),
        )
        .await
    }

    /// Asks for access within a case.
    pub async fn request_access(
        &self,
        req: &wire::CreateAccessRequest,
    ) -> Result<wire::AccessRequest, SdkError> {
        self.call(self.req(Method::POST, "/v1/staff/requests").json(req))
            .await
    }

    /// One access request.
    pub async fn access_request(&self, id: Uuid) -> Result<wire::AccessRequest, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/staff/requests/{id}")))
            .await
    }

    /// Approves or denies a request.
    pub async fn decide(
        &self,
        id: Uuid,
        approve: bool,
        justification: &str,
    ) -> Result<wire::AccessRequest, SdkError> {
        let body = wire::DecideRequest {
            approve,
            justification: justification.into(),
        };
        self.call(
            self.req(Method::POST, &format!("/v1/staff/requests/{id}/decisions"))
                .json(&body),
        )
        .await
    }

    /// Revokes a request or its grant.
    pub async fn revoke(&self, id: Uuid) -> Result<wire::AccessRequest, SdkError> {
        self.call(self.req(Method::POST, &format!("/v1/staff/requests/{id}/revoke")))
            .await
    }

    /// Completes a grant (its requester).
    pub async fn complete(&self, id: Uuid) -> Result<wire::AccessRequest, SdkError> {
        self.call(self.req(Method::POST, &format!("/v1/staff/requests/{id}/complete")))
            .await
    }

    /// Reads within a grant; the read is in the audit log before anything is shown.
    pub async fn read_grant(&self, id: Uuid) -> Result<wire::GrantRead, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/staff/requests/{id}/messages")))
            .await
    }

    /// Enters a legal request as served (legal officers).
    pub async fn receive_legal_request(
        &self,
        req: &wire::NewLegalRequest,
    ) -> Result<wire::LegalRequest, SdkError> {
        self.call(self.req(Method::POST, "/v1/staff/legal-requests").json(req))
            .await
    }

    /// Every legal request, newest first (legal officers).
    pub async fn legal_requests(&self) -> Result<Vec<wire::LegalRequest>, SdkError> {
        self.call(self.req(Method::GET, "/v1/staff/legal-requests"))
            .await
    }

    /// One legal request (legal officers).
    pub async fn legal_request(&self, id: Uuid) -> Result<wire::LegalRequest, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/staff/legal-requests/{id}")))
            .await
    }

    /// Reviews a legal request: full, partial (narrowed) or rejected (legal officers).
    pub async fn review_legal_request(
        &self,
        id: Uuid,
        review: &wire::ReviewLegalRequest,
    ) -> Result<wire::LegalRequest, SdkError> {
        self.call(
            self.req(
                Method::POST,
                &format!("/v1/staff/legal-requests/{id}/review"),
            )
            .json(review),
        )
        .await
    }

    /// Produces an accepted legal request: opens its cases and asks for access to
    /// exactly what it covers (legal officers); the requests then need their approvals.
    pub async fn produce(&self, request: Uuid) -> Result<Vec<wire::AccessRequest>, SdkError> {
        self.call(self.req(
            Method::POST,
            &format!("/v1/staff/legal-requests/{request}/produce"),
        ))
        .await
    }

    /// Reads preserved file `file` under evidence grant `request` (logged first): its
    /// content type and bytes.
    pub async fn read_evidence(
        &self,
        request: Uuid,
        file: Uuid,
    ) -> Result<(String, Vec<u8>), SdkError> {
        self.call_bytes(self.req(
            Method::GET,
            &format!("/v1/staff/requests/{request}/files/{file}"),
        ))
        .await
    }

    /// Builds the disclosure package of a produced legal request, encrypted to the agency's
    /// age `recipient` (legal officers; the build reads and is logged): the package bytes.
    pub async fn build_package(&self, request: Uuid, recipient: &str) -> Result<Vec<u8>, SdkError> {
        let (_, bytes) = self
            .call_bytes(
                self.req(
                    Method::POST,
                    &format!("/v1/staff/legal-requests/{request}/package"),
                )
                .json(&wire::BuildPackage {
                    recipient: recipient.to_owned(),
                }),
            )
            .await?;
        Ok(bytes)
    }

    /// Served document `position` of a legal request: its media type and bytes.
    pub async fn served_document(
        &self,
        request: Uuid,
        position: u32,
    ) -> Result<(String, Vec<u8>), SdkError> {
        self.call_bytes(self.req(
            Method::GET,
            &format!("/v1/staff/legal-requests/{request}/documents/{position}"),
        ))
        .await
    }

    /// Places preservation holds for a legal request (legal officers).
    pub async fn place_holds(&self, request: Uuid) -> Result<Vec<wire::Hold>, SdkError> {
        self.call(self.req(
            Method::POST,
            &format!("/v1/staff/legal-requests/{request}/holds"),
        ))
        .await
    }

    /// The holds of a legal request.
    pub async fn holds(&self, request: Uuid) -> Result<Vec<wire::Hold>, SdkError> {
        self.call(self.req(
            Method::GET,
            &format!("/v1/staff/legal-requests/{request}/holds"),
        ))
        .await
    }

    /// Extends a hold by 90 days (once).
    pub async fn extend_hold(&self, id: Uuid) -> Result<wire::Hold, SdkError> {
        self.call(self.req(Method::POST, &format!("/v1/staff/holds/{id}/extend")))
            .await
    }

    /// Releases a hold.
    pub async fn release_hold(&self, id: Uuid) -> Result<wire::Hold, SdkError> {
        self.call(self.req(Method::POST, &format!("/v1/staff/holds/{id}/release")))
            .await
    }

    /// The transparency report over the days `from` to `to` (YYYY-MM-DD, UTC) at the log's
    /// last kept checkpoint, exactly as the server sends it: JSON, or with `html` the
    /// self-contained page.
    pub async fn transparency_report(
        &self,
        from: &str,
        to: &str,
        html: bool,
    ) -> Result<String, SdkError> {
        let format = if html { "html" } else { "json" };
        self.call_text(
            self.req(Method::GET, "/v1/staff/transparency-report")
                .query(&[("from", from), ("to", to), ("format", format)]),
        )
        .await
    }

    /// The full record beside audit log entry `index` (auditors; the read is logged).
    pub async fn audit_record(&self, index: u64) -> Result<wire::AuditRecord, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/staff/audit/records/{index}")))
            .await
    }
}
