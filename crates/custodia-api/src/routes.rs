//! The HTTPS endpoints.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use custodia_core::{
    BirthDate, ClientMsgId, ConversationId, GroupTitle, MessageBody, Password, SessionId, Username,
};
use custodia_proto as wire;
use custodia_service::ServiceError;
use custodia_store::SeqRange;
use serde::Deserialize;

use crate::extract::{Authed, Body, MAX_REQUEST_BYTES, Params};
use crate::{ApiError, AppState, PeerAddr, convert, ws};

pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/accounts", post(register))
        .route("/v1/sessions", post(login).get(sessions))
        .route("/v1/sessions/current", delete(logout))
        .route("/v1/sessions/{id}", delete(revoke))
        .route(
            "/v1/conversations",
            post(create_conversation).get(conversations),
        )
        .route("/v1/conversations/{id}", get(conversation))
        .route("/v1/conversations/{id}/members", post(add_member))
        .route(
            "/v1/conversations/{id}/members/{username}",
            delete(remove_member),
        )
        .route("/v1/conversations/{id}/messages", post(send).get(history))
        .route(
            "/v1/conversations/{id}/messages/{seq}",
            delete(delete_message),
        )
        .route("/v1/conversations/{id}/read", post(mark_read))
        .route("/v1/conversations/{id}/reports", post(report))
        .route("/v1/attachments/{id}", get(download))
        .route("/v1/settings", get(settings).put(set_settings))
        .route("/v1/me", delete(close_account))
        .route("/v1/me/export", get(crate::export::export))
        .route("/v1/me/access-notices", get(access_notices))
        .route("/v1/me/log-key", get(log_key))
        .route("/v1/connections", post(connect).get(connections))
        .route("/v1/connections/{username}", delete(disconnect))
        .route("/v1/blocks", post(block).get(blocks))
        .route("/v1/blocks/{username}", delete(unblock));
    let api = crate::edge::declared_limit(api, MAX_REQUEST_BYTES as u64)
        .route(
            "/v1/conversations/{id}/attachments",
            post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .layer(axum::middleware::from_fn(deadline));
    Router::new()
        .merge(api)
        .route("/v1/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::not_found("no such endpoint; see the API description in README")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("this endpoint does not accept that method")
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// Longest an API request may take before it is answered with 503.
const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers 503 problem+json when a request takes longer than [`REQUEST_DEADLINE`].
async fn deadline(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::unavailable("the server is overloaded; retry later").into_response(),
    }
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse().map_err(ApiError::from)
}

/// The caller's access notices, newest first: their own data (no staff role reads them).
async fn access_notices(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<Vec<wire::AccessNotice>>, ApiError> {
    let notices = s.service.access_notices(&who).await?;
    Ok(Json(notices.iter().map(convert::access_notice).collect()))
}

/// The caller's key for finding the audit log's entries about them, and the log's key.
async fn log_key(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<wire::MemberLogKey>, ApiError> {
    use base64::Engine;
    let (key, log) = s.governance.member_log_key(who.user_id);
    Ok(Json(wire::MemberLogKey {
        key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
        log,
    }))
}

/// 200 while this node can store and fan out; 503 with the reason while it cannot (a full
/// disk, a lost database or NATS), so a load balancer sends its traffic elsewhere.
async fn ready(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    match s.service.ready().await {
        // Degraded limits do not stop a node: it serves, limiting sends on its own.
        Ok(()) if s.service.limits_degraded().await => Ok(
            "ready; send limits degraded: the shared limit store does not answer, so each node limits sends on its own",
        ),
        Ok(()) => Ok("ready"),
        // The reason is a category: this endpoint is public, and a driver's message may
        // name internal hosts. The operator's log has the details.
        Err(ServiceError::Unavailable(why) | ServiceError::Internal(why)) => {
            tracing::debug!(%why, "not ready");
            let reason = if why.contains("fan-out") {
                "fan-out to the other nodes is down"
            } else if why.contains("full") {
                "storage cannot commit: the disk is full"
            } else {
                "storage cannot commit"
            };
            Err(ApiError::unavailable(format!("not ready: {reason}")))
        }
        Err(_) => Err(ApiError::unavailable("not ready")),
    }
}

/// Prometheus metrics, for the operator only: they show live sessions, sends and commit
/// timings, which outsiders have no business watching.
async fn metrics(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    use subtle::ConstantTimeEq;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(s.metrics_token.as_bytes())) {
        return Err(ApiError::unauthorized(
            "metrics need the operator's token (DATA_DIR/metrics.token) as a bearer token",
        ));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    ))
}

async fn register(
    State(s): State<AppState>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Body(req): Body<wire::RegisterRequest>,
) -> Result<(StatusCode, Json<wire::Account>), ApiError> {
    let username = Username::parse(&req.username)?;
    let password = Password::parse(req.password)?;
    let today = s.service.today();
    let dob = BirthDate::parse(&req.date_of_birth, today)?;
    let id = s
        .service
        .register(username.clone(), password, dob, peer.ip())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::Account {
            user_id: *id.as_uuid(),
            username: username.to_string(),
        }),
    ))
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Body(req): Body<wire::LoginRequest>,
) -> Result<(StatusCode, Json<wire::LoginResponse>), ApiError> {
    // A malformed password cannot be right; answer as for a wrong one.
    let password = Password::parse(req.password)
        .map_err(|_| custodia_service::ServiceError::BadCredentials)?;
    let device = req.device.unwrap_or_default();
    let new = s
        .service
        .login(&req.username, password, &device, peer.ip())
        .await?;
    let body = wire::LoginResponse {
        token: new.token.to_string(),
        session: convert::session(&new.session),
        user_id: *new.user_id.as_uuid(),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Closes the caller's account, with its password; says honestly what could not be
/// destroyed yet (copies a preservation hold keeps) and when the name is free.
async fn close_account(
    State(s): State<AppState>,
    Authed(who): Authed,
    Body(req): Body<wire::CloseAccount>,
) -> Result<Json<wire::AccountClosed>, ApiError> {
    let password = Password::parse(req.password).map_err(|_| {
        custodia_service::ServiceError::Forbidden(
            "that is not this account's password; the account stays open",
        )
    })?;
    let closure = s.service.close_account(&who, password).await?;
    s.governance.log_account_closed(&closure).await;
    let deleted = closure.deleted.len() as u64;
    let detail = if closure.kept == 0 {
        format!(
            "your account is closed: you are signed out everywhere, your {deleted} messages \
             are deleted for everyone and their stored copies destroyed, and your data is gone"
        )
    } else {
        format!(
            "your account is closed: you are signed out everywhere and your {deleted} messages \
             are deleted for everyone; {} of them are kept, unreadable to members, under a \
             legal obligation to preserve them, and destroyed when it ends",
            closure.kept
        )
    };
    Ok(Json(wire::AccountClosed {
        messages_deleted: deleted,
        messages_kept_under_hold: closure.kept,
        attachments_destroyed: closure.attachments,
        name_free_from_ms: s.governance.closed_name_free_from().as_millis(),
        detail,
    }))
}

async fn sessions(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<Vec<wire::Session>>, ApiError> {
    Ok(Json(
        s.service
            .sessions(&who)
            .await?
            .iter()
            .map(convert::session)
            .collect(),
    ))
}

async fn logout(State(s): State<AppState>, Authed(who): Authed) -> Result<StatusCode, ApiError> {
    s.service.revoke_session(&who, who.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: SessionId = id.parse()?;
    s.service.revoke_session(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_conversation(
    State(s): State<AppState>,
    Authed(who): Authed,
    Body(req): Body<wire::CreateConversation>,
) -> Result<(StatusCode, Json<wire::Conversation>), ApiError> {
    match req {
        wire::CreateConversation::Direct { peer } => {
            let (c, created) = s
                .service
                .open_direct(&who, &Username::parse(&peer)?)
                .await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(convert::conversation(&c))))
        }
        wire::CreateConversation::Group { title, members } => {
            let title = GroupTitle::parse(&title)?;
            let members = members
                .iter()
                .map(|m| Username::parse(m))
                .collect::<Result<Vec<_>, _>>()?;
            let c = s.service.create_group(&who, title, &members).await?;
            Ok((StatusCode::CREATED, Json(convert::conversation(&c))))
        }
    }
}

async fn conversations(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<Vec<wire::Conversation>>, ApiError> {
    Ok(Json(
        s.service
            .conversations(&who)
            .await?
            .iter()
            .map(convert::conversation)
            .collect(),
    ))
}

async fn conversation(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> Result<Json<wire::Conversation>, ApiError> {
    Ok(Json(convert::conversation(
        &s.service.conversation(&who, conversation_id(&id)?).await?,
    )))
}

async fn add_member(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Body(req): Body<wire::AddMemberRequest>,
) -> Result<StatusCode, ApiError> {
    s.service
        .add_member(
            &who,
            conversation_id(&id)?,
            &Username::parse(&req.username)?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path((id, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.service
        .remove_member(&who, conversation_id(&id)?, &Username::parse(&username)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn send(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Body(req): Body<wire::SendRequest>,
) -> Result<(StatusCode, Json<wire::Ack>), ApiError> {
    let id = conversation_id(&id)?;
    let client_id = ClientMsgId::parse(&req.client_id)?;
    let body = MessageBody::parse(req.body)?;
    let outcome = s.service.send(&who, id, client_id, body).await?;
    if !outcome.duplicate {
        s.metrics.sends.inc();
    }
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(convert::ack(&outcome))))
}

#[derive(Deserialize)]
struct HistoryQuery {
    after: Option<u64>,
    before: Option<u64>,
    limit: Option<u32>,
}

async fn history(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Params(q): Params<HistoryQuery>,
) -> Result<Json<wire::HistoryPage>, ApiError> {
    let range = match (q.after, q.before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give either after or before, not both",
            ));
        }
        (Some(a), None) => Some(SeqRange::After(a)),
        (None, Some(b)) => Some(SeqRange::Before(b)),
        (None, None) => None,
    };
    let page = s
        .service
        .history(&who, conversation_id(&id)?, range, q.limit.unwrap_or(50))
        .await?;
    Ok(Json(wire::HistoryPage {
        messages: page.messages.iter().map(convert::message).collect(),
        has_more: page.has_more,
    }))
}

async fn delete_message(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path((id, seq)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let seq: u64 = seq
        .parse()
        .map_err(|_| ApiError::unprocessable("the message is named by its sequence number"))?;
    let done = s
        .service
        .delete_message(&who, conversation_id(&id)?, seq)
        .await?;
    Ok(match done {
        custodia_service::Deletion::Destroyed => StatusCode::NO_CONTENT.into_response(),
        // Said as it is: removed for everyone, the stored copy destroyed later.
        custodia_service::Deletion::Deferred => (
            StatusCode::ACCEPTED,
            Json(wire::DeletionDeferred {
                deleted_for_everyone: true,
                destroyed: false,
                detail: "removed for everyone; the stored copy is kept under a legal \
                         obligation to preserve it and destroyed when that ends"
                    .into(),
            }),
        )
            .into_response(),
    })
}

async fn mark_read(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Body(req): Body<wire::ReadRequest>,
) -> Result<Json<wire::ReadPosition>, ApiError> {
    let id = conversation_id(&id)?;
    let read_seq = s.service.mark_read(&who, id, req.seq).await?;
    Ok(Json(wire::ReadPosition {
        conversation_id: *id.as_uuid(),
        read_seq,
    }))
}

async fn report(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Body(req): Body<wire::staff::ReportRequest>,
) -> Result<(StatusCode, Json<wire::staff::ReportResponse>), ApiError> {
    use base64::Engine;
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in req.messages {
        let franking_key = match m.franking_key {
            Some(k) => Some(custodia_keys::FrankingKey::from_bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(k)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        ApiError::unprocessable(
                            "franking_key must be the base64 key received with the message",
                        )
                    })?,
            )),
            None => None,
        };
        messages.push(custodia_governance::ReportedMessage {
            seq: m.seq,
            text: m.body,
            franking_key,
        });
    }
    let report = custodia_governance::Report {
        conversation_id: conversation_id(&id)?,
        messages,
        category: custodia_core::ReportCategory::parse(&req.category)?,
        comment: req.comment,
    };
    let case = s.governance.report(&who, report).await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::staff::ReportResponse {
            case_id: *case.as_uuid(),
        }),
    ))
}

async fn settings(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<wire::Settings>, ApiError> {
    let w = s.service.who_can_message(&who).await?;
    Ok(Json(wire::Settings {
        who_can_message: w.as_str().into(),
    }))
}

async fn set_settings(
    State(s): State<AppState>,
    Authed(who): Authed,
    Body(req): Body<wire::Settings>,
) -> Result<Json<wire::Settings>, ApiError> {
    let setting = custodia_core::WhoCanMessage::parse(&req.who_can_message)?;
    let w = s.service.set_who_can_message(&who, setting).await?;
    Ok(Json(wire::Settings {
        who_can_message: w.as_str().into(),
    }))
}

pub(crate) fn connection(c: &custodia_service::ConnectionView) -> wire::Connection {
    wire::Connection {
        username: c.user.to_string(),
        accepted: c.accepted,
        asked_by_me: c.asked_by_me,
    }
}

async fn connect(
    State(s): State<AppState>,
    Authed(who): Authed,
    Body(req): Body<wire::UserRef>,
) -> Result<Json<wire::Connection>, ApiError> {
    let peer = Username::parse(&req.username)?;
    Ok(Json(connection(&s.service.connect(&who, &peer).await?)))
}

async fn connections(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<Vec<wire::Connection>>, ApiError> {
    let all = s.service.connections(&who).await?;
    Ok(Json(all.iter().map(connection).collect()))
}

async fn disconnect(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.service.disconnect(&who, &Username::parse(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn block(
    State(s): State<AppState>,
    Authed(who): Authed,
    Body(req): Body<wire::UserRef>,
) -> Result<StatusCode, ApiError> {
    s.service
        .block(&who, &Username::parse(&req.username)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn blocks(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<Vec<String>>, ApiError> {
    let all = s.service.blocked(&who).await?;
    Ok(Json(all.iter().map(ToString::to_string).collect()))
}

async fn unblock(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.service.unblock(&who, &Username::parse(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn attachment(a: &custodia_service::AttachmentView) -> wire::Attachment {
    wire::Attachment {
        id: *a.id.as_uuid(),
        conversation_id: *a.conversation_id.as_uuid(),
        uploader: *a.uploader.as_uuid(),
        size: a.size,
        content_type: a.content_type.clone(),
        created_at_ms: a.created_at.as_millis(),
    }
}

/// Receives the file as it streams in, refusing it as soon as it passes the limit.
async fn upload(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<wire::Attachment>), ApiError> {
    use futures_util::StreamExt;
    let conversation = conversation_id(&id)?;
    let declared = crate::edge::declared_length(&headers);
    let max = usize::try_from(s.service.max_attachment_bytes()).unwrap_or(usize::MAX);
    // Refused before the body is read (so before `100 Continue`) if it says it is too big.
    if declared.is_some_and(|n| n > s.service.max_attachment_bytes()) {
        return Err(crate::edge::too_large(s.service.max_attachment_bytes()));
    }
    let mut stream = body.into_data_stream();
    let mut file = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::bad_request("the upload was interrupted; send it again"))?;
        if file.len() + chunk.len() > max {
            return Err(ApiError::too_large(format!(
                "attachment too large: at most {max} bytes"
            )));
        }
        file.extend_from_slice(&chunk);
    }
    let a = s.service.upload(&who, conversation, file).await?;
    Ok((StatusCode::CREATED, Json(attachment(&a))))
}

async fn download(
    State(s): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id: custodia_core::AttachmentId = id.parse()?;
    let (a, bytes) = s.service.download(&who, id).await?;
    let mut res = bytes.to_vec().into_response();
    let h = res.headers_mut();
    let ctype = axum::http::HeaderValue::from_str(&a.content_type).unwrap_or(
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_TYPE, ctype);
    h.insert(
        header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}
