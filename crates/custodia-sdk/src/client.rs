//! [`Client`]: the HTTPS API.

use std::fmt;
use std::sync::Arc;

use custodia_proto as wire;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::Connection;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The server answered with a problem.
    #[error("{} ({}): {}", .0.title, .0.status, .0.detail)]
    Api(wire::Problem),
    /// The request did not reach the server or the answer could not be read.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The WebSocket failed.
    #[error("WebSocket: {0}")]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// TLS configuration (e.g. a bad CA certificate file).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server sent something this client does not understand, or the call needs a
    /// session first.
    #[error("{0}")]
    Protocol(String),
}

impl SdkError {
    /// The problem's HTTP status, if the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(p) => Some(p.status),
            _ => None,
        }
    }
}

/// A client of one server, optionally signed in.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    tls: Arc<rustls::ClientConfig>,
    pub(crate) token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("signed_in", &self.token.is_some())
            .finish()
    }
}

impl Client {
    /// A client for `server` (`https://host:port`) trusting the CA certificate(s) in `ca_pem`.
    pub fn new(server: &str, ca_pem: &[u8]) -> Result<Self, SdkError> {
        let tls = crate::tls::client_config(ca_pem).map_err(SdkError::Tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(std::time::Duration::from_secs(60))
            // The server closes a connection idle for `header_timeout_secs` (20 by
            // default); drop pooled ones sooner, so a request never races that close.
            .pool_idle_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Self {
            http,
            base: String::new(),
            tls,
            token: None,
        }
        .at(server)
    }

    /// The same client (trust and session) talking to another node of the same
    /// deployment at `server`.
    pub fn at(&self, server: &str) -> Result<Self, SdkError> {
        let base = server.trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            return Err(SdkError::Protocol(format!(
                "server must be an https:// URL, not {base:?}"
            )));
        }
        Ok(Self {
            base,
            ..self.clone()
        })
    }

    /// The same client using an existing session token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The session token, if signed in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    pub(crate) fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    pub(crate) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub(crate) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        r: RequestBuilder,
    ) -> Result<T, SdkError> {
        let res = r.send().await?;
        if res.status().is_success() {
            Ok(res.json().await?)
        } else {
            Err(problem(res).await)
        }
    }

    pub(crate) async fn call_text(&self, r: RequestBuilder) -> Result<String, SdkError> {
        let res = r.send().await?;
        if res.status().is_success() {
            Ok(res.text().await?)
        } else {
            Err(problem(res).await)
        }
    }

    /// A call whose answer is a file: its content type and bytes.
    pub(crate) async fn call_bytes(
        &self,
        r: RequestBuilder,
    ) -> Result<(String, Vec<u8>), SdkError> {
        let res = r.send().await?;
        if !res.status().is_success() {
            return Err(problem(res).await);
        }
        let ctype = response_type(&res);
        Ok((ctype, res.bytes().await?.to_vec()))
    }

    pub(crate) async fn call_empty(&self, r: RequestBuilder) -> Result<(), SdkError> {
        let res = r.send().await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(problem(res).await)
        }
    }

    /// Creates an account.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        date_of_birth: &str,
    ) -> Result<wire::Account, SdkError> {
        let body = wire::RegisterRequest {
            username: username.into(),
            password: password.into(),
            date_of_birth: date_of_birth.into(),
        };
        self.call(self.req(Method::POST, "/v1/accounts").json(&body))
            .await
    }

    /// Signs in; the client keeps the token for later calls.
    pub async fn login(
        &mut self,
        username: &str,
        password: &str,
        device: &str,
    ) -> Result<wire::LoginResponse, SdkError> {
        let body = wire::LoginRequest {
            username: username.into(),
            password: password.into(),
            device: Some(device.into()),
        };
        let res: wire::LoginResponse = self
            .call(self.req(Method::POST, "/v1/sessions").json(&body))
            .await?;
        self.token = Some(res.token.clone());
        Ok(res)
    }

    /// Signs out (ends this session).
    pub async fn logout(&mut self) -> Result<(), SdkError> {
        self.call_empty(self.req(Method::DELETE, "/v1/sessions/current"))
            .await?;
        self.token = None;
        Ok(())
    }

    /// Closes the caller's account (with its password): signed out everywhere, their
    /// messages deleted for everyone, their data destroyed (see [`wire::AccountClosed`]).
    pub async fn close_account(&mut self, password: &str) -> Result<wire::AccountClosed, SdkError> {
        let body = wire::CloseAccount {
            password: password.to_owned(),
        };
        let closed = self
            .call(self.req(Method::DELETE, "/v1/me").json(&body))
            .await?;
        self.token = None;
        Ok(closed)
    }

    /// Exports everything the service holds about the caller (a zip of JSON files),
    /// writing it to `out` chunk by chunk as it arrives; returns the bytes written.
    pub async fn export_to(
        &self,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, SdkError> {
        use tokio::io::AsyncWriteExt;
        let mut res = self.req(Method::GET, "/v1/me/export").send().await?;
        if !res.status().is_success() {
            return Err(problem(res).await);
        }
        let mut written = 0;
        while let Some(chunk) = res.chunk().await? {
            out.write_all(&chunk)
                .await
                .map_err(|e| SdkError::Protocol(format!("writing the export: {e}")))?;
            written += chunk.len() as u64;
        }
        out.flush()
            .await
            .map_err(|e| SdkError::Protocol(format!("writing the export: {e}")))?;
        Ok(written)
    }

    /// The caller's sessions.
    pub async fn sessions(&self) -> Result<Vec<wire::Session>, SdkError> {
        self.call(self.req(Method::GET, "/v1/sessions")).await
    }

    /// Ends one of the caller's sessions.
    pub async fn revoke_session(&self, id: Uuid) -> Result<(), SdkError> {
        self.call_empty(self.req(Method::DELETE, &format!("/v1/sessions/{id}")))
            .await
    }

    /// Opens (or finds) the direct conversation with `peer`.
    pub async fn open_direct(&self, peer: &str) -> Result<wire::Conversation, SdkError> {
        let body = wire::CreateConversation::Direct { peer: peer.into() };
        self.call(self.req(Method::POST, "/v1/conversations").json(&body))
            .await
    }

    /// Creates a group.
    pub async fn create_group(
        &self,
        title: &str,
        members: &[&str],
    ) -> Result<wire::Conversation, SdkError> {
        let body = wire::CreateConversation::Group {
            title: title.into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        self.call(self.req(Method::POST, "/v1/conversations").json(&body))
            .await
    }

    /// The caller's conversations.
    pub async fn conversations(&self) -> Result<Vec<wire::Conversation>, SdkError> {
        self.call(self.req(Method::GET, "/v1/conversations")).await
    }

    /// One conversation with its members.
    pub async fn conversation(&self, id: Uuid) -> Result<wire::Conversation, SdkError> {
        self.call(self.req(Method::GET, &format!("/v1/conversations/{id}")))
            .await
    }

    /// Adds a member to a group.
    pub async fn add_member(&self, id: Uuid, username: &str) -> Result<(), SdkError> {
        let body = wire::AddMemberRequest {
            username: username.into(),
        };
        self.call_empty(
            self.req(Method::POST, &format!("/v1/conversations/{id}/members"))
                .json(&body),
        )
        .await
    }

    /// Removes a member from a group (yourself: leave).
    pub async fn remove_member(&self, id: Uuid, username: &str) -> Result<(), SdkError> {
        self.call_empty(self.req(
            Method::DELETE,
            &format!("/v1/conversations/{id}/members/{username}"),
        ))
        .await
    }

    /// Sends a message over HTTPS; returns once it is durable.
    pub async fn send(&self, id: Uuid, client_id: &str, body: &str) -> Result<wire::Ack, SdkError> {
        let body = wire::SendRequest {
            client_id: client_id.into(),
            body: body.into(),
        };
        self.call(
            self.req(Method::POST, &format!("/v1/conversations/{id}/messages"))
                .json(&body),
        )
        .await
    }

    /// A page of history: `after` or `before` a sequence number, or the newest page.
    pub async fn history(
        &self,
        id: Uuid,
        after: Option<u64>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<wire::HistoryPage, SdkError> {
        let mut q = vec![("limit", limit.to_string())];
        q.extend(after.map(|a| ("after", a.to_string())));
        q.extend(before.map(|b| ("before", b.to_string())));
        self.call(
            self.req(Method::GET, &format!("/v1/conversations/{id}/messages"))
                .query(&q),
        )
        .await
    }

    /// Every message of a conversation, oldest first.
    pub async fn full_history(&self, id: Uuid) -> Result<Vec<wire::Message>, SdkError> {
        let mut out: Vec<wire::Message> = Vec::new();
        loop {
            let after = out.last().map_or(0, |m| m.seq);
            let page = self.history(id, Some(after), None, 200).await?;
            out.extend(page.messages);
            if !page.has_more {
                return Ok(out);
            }
        }
    }

    /// Marks a conversation read up to `seq`.
    pub async fn mark_read(&self, id: Uuid, seq: u64) -> Result<wire::ReadPosition, SdkError> {
        self.call(
            self.req(Method::POST, &format!("/v1/conversations/{id}/read"))
                .json(&json!({ "seq": seq })),
        )
        .await
    }

    /// Deletes one of your messages for everyone.
    pub async fn delete_message(&self, id: Uuid, seq: u64) -> Result<(), SdkError> {
        self.call_empty(self.req(
            Method::DELETE,
            &format!("/v1/conversations/{id}/messages/{seq}"),
        ))
        .await
    }

    /// An arbitrary request with this client's session, returning the status, the
    /// content type and the body as received. For tools and for testing the server's
    /// handling of malformed requests.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String, Vec<u8>), SdkError> {
        let res = self
            .req(method, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let ctype = response_type(&res);
        Ok((status, ctype, res.bytes().await?.to_vec()))
    }

    /// Opens the WebSocket. Call [`Connection::sync`] to start receiving.
    pub async fn connect(&self) -> Result<Connection, SdkError> {
        let token = self
            .token
            .as_deref()
            .ok_or_else(|| SdkError::Protocol("sign in first".into()))?;
        let url = format!("wss://{}/v1/ws", self.base.trim_start_matches("https://"));
        Connection::open(&url, token, self.tls()).await
    }
}

/// The response's `Content-Type`, or empty when it has none.
fn response_type(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn problem(res: reqwest::Response) -> SdkError {
    let status = res.status();
    match res.json::<wire::Problem>().await {
        Ok(p) => SdkError::Api(p),
        Err(_) => SdkError::Api(wire::Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: format!("the server answered {status} without a problem body"),
            instance: None,
        }),
    }
}

/// Whether an error means "sign in again".
pub fn is_unauthorized(e: &SdkError) -> bool {
    e.status() == Some(StatusCode::UNAUTHORIZED.as_u16())
}

/// Safety settings, connections and blocks.
impl Client {
    /// Notices that staff read messages of the caller's, newest first.
    pub async fn access_notices(&self) -> Result<Vec<wire::AccessNotice>, SdkError> {
        self.call(self.req(Method::GET, "/v1/me/access-notices"))
            .await
    }

    /// The caller's key for finding the audit log's entries about them, and the log's
    /// verifier key.
    pub async fn log_key(&self) -> Result<wire::MemberLogKey, SdkError> {
        self.call(self.req(Method::GET, "/v1/me/log-key")).await
    }

    /// The caller's effective "who can message me".
    pub async fn settings(&self) -> Result<wire::Settings, SdkError> {
        self.call(self.req(Method::GET, "/v1/settings")).await
    }

    /// Sets "who can message me": `everyone`, `connections` or `nobody`.
    pub async fn set_who_can_message(&self, who: &str) -> Result<wire::Settings, SdkError> {
        let body = wire::Settings {
            who_can_message: who.into(),
        };
        self.call(self.req(Method::PUT, "/v1/settings").json(&body))
            .await
    }

    /// Asks `username` to connect, or accepts their request.
    pub async fn connect_with(&self, username: &str) -> Result<wire::Connection, SdkError> {
        let body = wire::UserRef {
            username: username.into(),
        };
        self.call(self.req(Method::POST, "/v1/connections").json(&body))
            .await
    }

    /// The caller's connections and requests.
    pub async fn connections(&self) -> Result<Vec<wire::Connection>, SdkError> {
        self.call(self.req(Method::GET, "/v1/connections")).await
    }

    /// Ends a connection or request.
    pub async fn disconnect_from(&self, username: &str) -> Result<(), SdkError> {
        self.call_empty(self.req(Method::DELETE, &format!("/v1/connections/{username}")))
            .await
    }

    /// Blocks a member.
    pub async fn block(&self, username: &str) -> Result<(), SdkError> {
        let body = wire::UserRef {
            username: username.into(),
        };
        self.call_empty(self.req(Method::POST, "/v1/blocks").json(&body))
            .await
    }

    /// Lifts a block.
    pub async fn unblock(&self, username: &str) -> Result<(), SdkError> {
        self.call_empty(self.req(Method::DELETE, &format!("/v1/blocks/{username}")))
            .await
    }

    /// The members the caller blocked.
    pub async fn blocks(&self) -> Result<Vec<String>, SdkError> {
        self.call(self.req(Method::GET, "/v1/blocks")).await
    }

    /// Uploads a file to a conversation.
    pub async fn upload(
        &self,
        conversation: Uuid,
        file: Vec<u8>,
    ) -> Result<wire::Attachment, SdkError> {
        self.call(
            self.req(
                Method::POST,
                &format!("/v1/conversations/{conversation}/attachments"),
            )
            .header("content-type", "application/octet-stream")
            .body(file),
        )
        .await
    }

    /// Downloads an attachment: its content type and bytes.
    pub async fn download(&self, id: Uuid) -> Result<(String, Vec<u8>), SdkError> {
        self.call_bytes(self.req(Method::GET, &format!("/v1/attachments/{id}")))
            .await
    }
}
