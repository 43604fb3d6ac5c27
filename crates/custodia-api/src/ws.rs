//! The WebSocket session.
//!
//! Three parts per connection, joined so that when one ends the session ends:
//! - the session loop reads client frames, answers sync/read/ping, and forwards live
//!   events through a [`DeliveryCursor`] so each message arrives exactly once, in order;
//! - the sender task performs sends one after another (a client's messages keep their
//!   order) and acknowledges each only once it is durable;
//! - the writer task owns the socket's sink.
//!
//! The session logic is generic over `Stream`/`Sink` of WebSocket messages, so tests can
//! drive it without sockets.

use std::collections::HashMap;

use axum::extract::State;
use axum::extract::ws::{
    CloseFrame, Message as WsMessage, Utf8Bytes, WebSocketUpgrade, close_code,
};
use axum::response::Response;
use custodia_core::{ClientMsgId, ConversationId, MessageBody};
use custodia_proto::{ClientFrame, ServerFrame};
use custodia_service::{Admit, DeliveryCursor, Event, MAX_PAGE, MessageView, Principal};
use custodia_store::SeqRange;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::extract::Authed;
use crate::{ApiError, AppState, convert};

/// Largest frame a client may send.
const MAX_FRAME: usize = 128 * 1024;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 256;
/// Sends queued for the sender task; reading pauses when it is full.
const SEND_QUEUE: usize = 64;
/// WebSocket buffer sizes. The library's defaults (128 KiB read buffer, allocated per
/// connection) would dominate the memory of an idle connection; frames larger than this
/// still work, the buffer grows for them.
const WS_BUFFER: usize = 4 * 1024;
/// Longest a closing session waits for the client to answer its close frame.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Default page of a catch-up, per conversation.
const DEFAULT_SYNC_LIMIT: u32 = 100;

/// Why a session stops before the client leaves.
enum End {
    /// The connection is gone.
    Gone,
    /// What was missed could not be read from storage: the client reconnects and syncs
    /// from what it holds (close 1013), so nothing is skipped.
    Again,
}

/// Whether a session goes on.
type Flow = Result<(), End>;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Authed(who): Authed,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            // Tracked, so shutdown waits for the session's goodbye.
            let sessions = state.sessions.clone();
            sessions.track_future(run(state, who, sink, stream))
        })
}

struct SendCmd {
    conversation: Option<ConversationId>,
    client_id: String,
    body: String,
}

/// Runs one session until the client leaves, the session is revoked, or shutdown.
pub(crate) async fn run<S, R>(state: AppState, who: Principal, sink: S, stream: R)
where
    S: Sink<WsMessage> + Unpin + Send + 'static,
    R: Stream<Item = Result<WsMessage, axum::Error>> + Unpin + Send,
{
    // Read again after the loop (to take the client's close answer): fused, so a stream
    // that ended is never polled again.
    let mut stream = stream.fuse();
    state.metrics.sessions.inc();
    let mut sub = state.service.hub().subscribe(who.user_id, who.session_id);
    let (out_tx, out_rx) = mpsc::channel::<String>(OUT_QUEUE);
    let (close_tx, close_rx) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(write_frames(sink, out_rx, close_rx));
    let mut sends = Sends::default();
    // How the session ends, told to the client in the close frame.
    let mut close = (close_code::NORMAL, "goodbye");

    let mut cursor: Option<DeliveryCursor> = None;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(_))) => {
                        let e = ApiError::unsupported_media("send JSON objects in text frames");
                        if !emit(&out_tx, error_frame(None, &e)).await { break; }
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | None => break,
                    Some(Err(e)) => {
                        close = close_for(e);
                        break;
                    }
                    Some(Ok(_)) => continue, // ping/pong are answered by the library
                };
                match handle(&state, &who, &text, &mut cursor, &out_tx, &mut sends).await {
                    Ok(()) => {}
                    Err(End::Gone) => break,
                    Err(End::Again) => {
                        close = (close_code::AGAIN, "reconnect and sync");
                        break;
                    }
                }
            }
            event = sub.events.recv(), if cursor.is_some() => {
                let Some(event) = event else {
                    // Revoked, or too slow to keep up.
                    close = (close_code::AGAIN, "reconnect and sync");
                    break;
                };
                let Some(cur) = cursor.as_mut() else { continue };
                match deliver(&state, &who, &event, cur, &out_tx).await {
                    Ok(()) => {}
                    Err(End::Gone) => break,
                    Err(End::Again) => {
                        close = (close_code::AGAIN, "reconnect and sync");
                        break;
                    }
                }
            }
            () = state.shutdown.cancelled() => {
                close = (close_code::AWAY, "the server is shutting down; reconnect");
                break;
            }
        }
    }
    // Sends already read are acknowledged or refused; no new ones are taken.
    sends.finish().await;
    let _ = close_tx.send(close);
    drop(out_tx);
    // Until the client answers the close frame (RFC 6455 §5.5.1), what it still sends is
    // read and dropped: a socket closed with unread data is reset, and the reset would
    // destroy the close frame on its way. Bounded, for a client that never answers.
    let answered = async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, WsMessage::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, answered).await;
    let _ = writer.await;
    state.metrics.sessions.dec();
}

/// Sends a frame, or reports the connection gone.
async fn send_frame(out: &Outbox, frame: ServerFrame) -> Flow {
    if emit(out, frame).await {
        Ok(())
    } else {
        Err(End::Gone)
    }
}

/// Handles one client frame.
async fn handle(
    state: &AppState,
    who: &Principal,
    text: &Utf8Bytes,
    cursor: &mut Option<DeliveryCursor>,
    out: &Outbox,
    sends: &mut Sends,
) -> Flow {
    let frame = match serde_json::from_str::<ClientFrame>(text.as_str()) {
        Ok(f) => f,
        Err(e) => {
            let e = ApiError::bad_request(format!("unrecognised frame: {e}"));
            return send_frame(out, error_frame(None, &e)).await;
        }
    };
    match frame {
        ClientFrame::Send {
            conversation_id,
            client_id,
            body,
        } => {
            let conversation = Some(ConversationId::from_uuid(conversation_id));
            let cmd = SendCmd {
                conversation,
                client_id,
                body,
            };
            if sends.queue(state, who, out, cmd).await {
                Ok(())
            } else {
                Err(End::Gone)
            }
        }
        ClientFrame::Sync { cursors, limit } => {
            if cursor.is_some() {
                let e = ApiError::conflict("this connection is already synced");
                return send_frame(out, error_frame(None, &e)).await;
            }
            let cursors: HashMap<ConversationId, u64> = cursors
                .into_iter()
                .map(|(k, v)| (ConversationId::from_uuid(k), v))
                .collect();
            let limit = limit.unwrap_or(DEFAULT_SYNC_LIMIT).clamp(1, MAX_PAGE);
            let pages = match state.service.catch_up(who, &cursors, limit).await {
                Ok(pages) => pages,
                Err(e) => return send_frame(out, error_frame(None, &e.into())).await,
            };
            let mut cur = DeliveryCursor::default();
            let mut more = false;
            for (id, last_seq, page) in pages {
                let start = cursors.get(&id).copied().unwrap_or(0).min(last_seq);
                cur.advance(id, start);
                forward(state, &mut cur, out, &page.messages).await?;
                more |= page.has_more;
            }
            // The rest of every backlog, page by page, from what was just sent.
            if more {
                resync(state, who, &mut cur, out, limit).await?;
            }
            *cursor = Some(cur);
            send_frame(
                out,
                ServerFrame::Synced {
                    has_more: Vec::new(),
                },
            )
            .await
        }
        ClientFrame::Read {
            conversation_id,
            seq,
        } => {
            match state
                .service
                .mark_read(who, ConversationId::from_uuid(conversation_id), seq)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => send_frame(out, error_frame(None, &e.into())).await,
            }
        }
        ClientFrame::Ping => send_frame(out, ServerFrame::Pong).await,
    }
}

/// Forwards one live event, filling any gap before it from history first.
async fn deliver(
    state: &AppState,
    who: &Principal,
    event: &Event,
    cursor: &mut DeliveryCursor,
    out: &Outbox,
) -> Flow {
    if let Event::Resync = event {
        return resync(state, who, cursor, out, MAX_PAGE).await;
    }
    if let Event::Message(m) = event {
        if let Admit::Gap { .. } = cursor.admit(m.conversation_id, m.seq) {
            fill_gap(state, who, cursor, out, m.conversation_id, m.seq - 1).await?;
        }
        if cursor.admit(m.conversation_id, m.seq) == Admit::Duplicate {
            return Ok(());
        }
        cursor.advance(m.conversation_id, m.seq);
    }
    let Some(frame) = convert::event(event) else {
        return Ok(());
    };
    state.metrics.deliveries.inc();
    send_frame(out, frame).await
}

/// Sends every stored message of `conversation` after the cursor's position up to
/// `through`, as many pages as it takes. The position moves only past what was sent: if
/// storage cannot say what was missed, the session ends for the client to sync again.
async fn fill_gap(
    state: &AppState,
    who: &Principal,
    cursor: &mut DeliveryCursor,
    out: &Outbox,
    conversation: ConversationId,
    through: u64,
) -> Flow {
    loop {
        let after = cursor.position(conversation).unwrap_or(0);
        if after >= through {
            return Ok(());
        }
        let limit = u32::try_from(through - after)
            .unwrap_or(MAX_PAGE)
            .min(MAX_PAGE);
        let page = match state
            .service
            .history(who, conversation, Some(SeqRange::After(after)), limit)
            .await
        {
            Ok(page) => page,
            // Removed from the conversation meanwhile, or storage trouble.
            Err(e) => {
                tracing::debug!(error = %e, "gap fill failed; the client syncs again");
                return Err(End::Again);
            }
        };
        // Ascending: the ones up to `through` are a prefix.
        let end = page.messages.partition_point(|x| x.seq <= through);
        forward(state, cursor, out, &page.messages[..end]).await?;
        if cursor.position(conversation).unwrap_or(0) <= after {
            tracing::warn!(%conversation, after, through, "history has no messages where a gap was");
            return Err(End::Again);
        }
    }
}

/// Catches a synced connection up from storage after the positions it has delivered
/// (live events may have been lost between nodes), `limit` messages per conversation per
/// page, until no conversation has more.
async fn resync(
    state: &AppState,
    who: &Principal,
    cursor: &mut DeliveryCursor,
    out: &Outbox,
    limit: u32,
) -> Flow {
    loop {
        let positions = cursor.positions();
        let pages = match state.service.catch_up(who, &positions, limit).await {
            Ok(pages) => pages,
            Err(e) => {
                tracing::debug!(error = %e, "catch-up failed; the client syncs again");
                return Err(End::Again);
            }
        };
        let mut more = false;
        for (_, _, page) in pages {
            more |= page.has_more;
            forward(state, cursor, out, &page.messages).await?;
        }
        if !more {
            return Ok(());
        }
    }
}

/// Sends the stored messages this connection has not delivered yet, in order, moving its
/// cursor past each one sent.
async fn forward(
    state: &AppState,
    cursor: &mut DeliveryCursor,
    out: &Outbox,
    messages: &[MessageView],
) -> Flow {
    for m in messages {
        if cursor.admit(m.conversation_id, m.seq) == Admit::Duplicate {
            continue;
        }
        send_frame(out, ServerFrame::Message(convert::message(m))).await?;
        cursor.advance(m.conversation_id, m.seq);
        state.metrics.deliveries.inc();
    }
    Ok(())
}

/// The connection's sender task, started on its first send (most connections are idle
/// and never need one).
#[derive(Default)]
struct Sends {
    task: Option<(mpsc::Sender<Box<SendCmd>>, tokio::task::JoinHandle<()>)>,
}

impl Sends {
    /// Queues a send; `false` if the sender task is gone.
    async fn queue(
        &mut self,
        state: &AppState,
        who: &Principal,
        out: &Outbox,
        cmd: SendCmd,
    ) -> bool {
        let (tx, _) = self.task.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(SEND_QUEUE);
            (
                tx,
                tokio::spawn(perform_sends(state.clone(), who.clone(), rx, out.clone())),
            )
        });
        tx.send(Box::new(cmd)).await.is_ok()
    }

    /// Takes no more sends and waits for the queued ones to be answered.
    async fn finish(self) {
        if let Some((tx, task)) = self.task {
            drop(tx);
            let _ = task.await;
        }
    }
}

async fn perform_sends(
    state: AppState,
    who: Principal,
    mut cmds: mpsc::Receiver<Box<SendCmd>>,
    out: Outbox,
) {
    while let Some(cmd) = cmds.recv().await {
        let client_id = cmd.client_id.clone();
        // Once shutdown begins, a send not yet started is refused, not left unanswered:
        // the client sends it again, with the same client id, after reconnecting.
        let frame = if state.shutdown.is_cancelled() {
            let e = ApiError::unavailable(
                "the server is shutting down; send it again after reconnecting",
            );
            error_frame(Some(client_id), &e)
        } else {
            match send_one(&state, &who, *cmd).await {
                Ok(ack) => ServerFrame::Ack(ack),
                Err(e) => error_frame(Some(client_id), &e),
            }
        };
        if !emit(&out, frame).await {
            break;
        }
    }
}

async fn send_one(
    state: &AppState,
    who: &Principal,
    cmd: SendCmd,
) -> Result<custodia_proto::Ack, ApiError> {
    let conversation = cmd
        .conversation
        .ok_or_else(|| ApiError::not_found("conversation not found"))?;
    let client_id = ClientMsgId::parse(&cmd.client_id)?;
    let body = MessageBody::parse(cmd.body)?;
    let outcome = state
        .service
        .send(who, conversation, client_id, body)
        .await?;
    if !outcome.duplicate {
        state.metrics.sends.inc();
    }
    Ok(convert::ack(&outcome))
}

async fn write_frames<S>(
    mut sink: S,
    mut frames: mpsc::Receiver<String>,
    close: tokio::sync::oneshot::Receiver<(u16, &'static str)>,
) where
    S: Sink<WsMessage> + Unpin,
{
    while let Some(json) = frames.recv().await {
        if sink.send(WsMessage::Text(json.into())).await.is_err() {
            return;
        }
    }
    let (code, reason) = close.await.unwrap_or((close_code::NORMAL, "goodbye"));
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = sink.send(WsMessage::Close(Some(frame))).await;
    let _ = sink.close().await;
}

/// The close code and reason for a frame the library could not read: 1009 for a frame
/// over the size limit (RFC 6455 §7.4.1), 1002 for a protocol violation.
fn close_for(e: axum::Error) -> (u16, &'static str) {
    match e.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            (close_code::SIZE, "frame too large: at most 131072 bytes")
        }
        Some(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_)) => {
            (close_code::PROTOCOL, "protocol error")
        }
        _ => (close_code::ERROR, "connection error"),
    }
}

fn error_frame(client_id: Option<String>, e: &ApiError) -> ServerFrame {
    ServerFrame::Error {
        client_id,
        problem: e.problem(),
    }
}

/// Frames for the writer, already serialized: a queue slot is then 24 bytes, and the
/// queue's first block is allocated with every connection.
type Outbox = mpsc::Sender<String>;

/// Queues a frame for the writer; `false` if the writer is gone.
async fn emit(out: &Outbox, frame: ServerFrame) -> bool {
    match serde_json::to_string(&frame) {
        Ok(json) => out.send(json).await.is_ok(),
        // Our frames always serialize; skip rather than end the session if one did not.
        Err(_) => true,
    }
}
