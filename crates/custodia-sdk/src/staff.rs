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

    /// Creates a staff account (admins); its one-time credentials are in the answer.
    pub async fn staff_create(
        &self,
        username: &str,
        role: &str,
    ) -> Result<wire::CreatedStaff, SdkError> {
        let body = wire::CreateStaff {
            username: username.into(),
            role: role.into(),
        };
        self.call(self.req(Method::POST, "/v1/staff/accounts").json(&body))
            .await
    }

    /// Changes a staff account's role or deactivates it (admins).
    pub async fn staff_update(
        &self,
        id: Uuid,
        role: &str,
        active: bool,
    ) -> Result<wire::StaffMember, SdkError> {
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
}
