//! [`Connection`]: the WebSocket.

use std::collections::HashMap;
use std::sync::Arc;

use custodia_proto::{ClientFrame, ServerFrame};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::{Positions, SdkError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A live connection. Frames arrive in server order; the receiving half drops any message
/// it already holds, so callers see each message once even across catch-up and live
/// delivery, and [`Connection::positions`] is what to sync from next time: never past a
/// message it lacks.
pub struct Connection {
    sender: Sender,
    receiver: Receiver,
}

/// The sending half of a [`Connection`].
pub struct Sender {
    sink: SplitSink<Ws, WsMessage>,
}

/// The receiving half of a [`Connection`].
pub struct Receiver {
    stream: SplitStream<Ws>,
    held: Positions,
    dedupe: bool,
    closed: Option<(u16, String)>,
}

impl Connection {
    pub(crate) async fn open(
        url: &str,
        token: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, SdkError> {
        let mut req = url
            .into_client_request()
            .map_err(|e| SdkError::Ws(Box::new(e)))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| SdkError::Protocol(e.to_string()))?;
        req.headers_mut().insert("authorization", auth);
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            req,
            None,
            true,
            Some(Connector::Rustls(tls)),
        )
        .await
        .map_err(|e| SdkError::Ws(Box::new(e)))?;
        let (sink, stream) = ws.split();
        Ok(Self {
            sender: Sender { sink },
            receiver: Receiver {
                stream,
                held: Positions::default(),
                dedupe: true,
                closed: None,
            },
        })
    }

    /// Asks for what was missed after `cursors` (the client holds everything up to each)
    /// and then live events.
    pub async fn sync(&mut self, cursors: HashMap<Uuid, u64>) -> Result<(), SdkError> {
        for (conversation, seq) in &cursors {
            self.receiver.held.hold_through(*conversation, *seq);
        }
        self.sender
            .frame(&ClientFrame::Sync {
                cursors,
                limit: None,
            })
            .await
    }

    /// Per conversation, the position up to which every message has arrived: what to sync
    /// from after a reconnect.
    pub fn positions(&self) -> HashMap<Uuid, u64> {
        self.receiver.positions()
    }

    /// Sends a keep-alive; the server answers with [`ServerFrame::Pong`] after everything
    /// queued for this connection before it.
    pub async fn ping(&mut self) -> Result<(), SdkError> {
        self.sender.frame(&ClientFrame::Ping).await
    }

    /// Sends a raw WebSocket message.
    pub async fn raw(&mut self, m: WsMessage) -> Result<(), SdkError> {
        self.sender.raw(m).await
    }

    /// Sends a message; the [`ServerFrame::Ack`] arrives on the receiving side.
    pub async fn send(
        &mut self,
        conversation: Uuid,
        client_id: &str,
        body: &str,
    ) -> Result<(), SdkError> {
        self.sender.send(conversation, client_id, body).await
    }

    /// The next frame, `None` when the server closed the connection.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, SdkError>> {
        self.receiver.next().await
    }

    /// The close code and reason the server gave, once [`Connection::next`] returned
    /// `None` (1001: the server restarts, reconnect; 1009: a frame was too large; 1013:
    /// reconnect and sync).
    pub fn closed_with(&self) -> Option<&(u16, String)> {
        self.receiver.closed.as_ref()
    }

    /// Turns off the receiving side's de-duplication, so every frame the server sends is
    /// seen as sent (for diagnostics and for testing the server's own guarantees).
    pub fn without_dedupe(mut self) -> Self {
        self.receiver.dedupe = false;
        self
    }

    /// Splits into halves that can be used from different tasks.
    pub fn split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }
}

impl Sender {
    /// Sends a message; the ack arrives on the [`Receiver`].
    pub async fn send(
        &mut self,
        conversation: Uuid,
        client_id: &str,
        body: &str,
    ) -> Result<(), SdkError> {
        let f = ClientFrame::Send {
            conversation_id: conversation,
            client_id: client_id.into(),
            body: body.into(),
        };
        self.frame(&f).await
    }

    /// Sends any frame.
    pub async fn frame(&mut self, f: &ClientFrame) -> Result<(), SdkError> {
        let text = serde_json::to_string(f).map_err(|e| SdkError::Protocol(e.to_string()))?;
        self.raw(WsMessage::Text(text.into())).await
    }

    /// Sends a raw WebSocket message (for testing the server's handling of bad frames).
    pub async fn raw(&mut self, m: WsMessage) -> Result<(), SdkError> {
        self.sink
            .send(m)
            .await
            .map_err(|e| SdkError::Ws(Box::new(e)))
    }

    /// Closes the connection.
    pub async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

impl Receiver {
    /// The close code and reason the server gave, once [`Receiver::next`] returned `None`.
    pub fn closed_with(&self) -> Option<&(u16, String)> {
        self.closed.as_ref()
    }

    /// Per conversation, the position up to which every message has arrived.
    pub fn positions(&self) -> HashMap<Uuid, u64> {
        self.held.through()
    }

    /// The next frame, skipping messages already seen; `None` when closed.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, SdkError>> {
        loop {
            let msg = match self.stream.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(SdkError::Ws(Box::new(e)))),
            };
            let text = match msg {
                WsMessage::Text(t) => t,
                WsMessage::Close(frame) => {
                    self.closed = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return None;
                }
                _ => continue,
            };
            let frame: ServerFrame = match serde_json::from_str(text.as_str()) {
                Ok(f) => f,
                Err(e) => {
                    return Some(Err(SdkError::Protocol(format!(
                        "unexpected frame from server: {e}"
                    ))));
                }
            };
            if let ServerFrame::Message(m) = &frame
                && !self.held.receive(m.conversation_id, m.seq)
                && self.dedupe
            {
                continue;
            }
            return Some(Ok(frame));
        }
    }
}
