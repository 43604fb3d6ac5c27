//! The Rust SDK of custodia: an async client for the HTTPS API and the WebSocket.
//!
//! ```no_run
//! # async fn demo() -> Result<(), custodia_sdk::SdkError> {
//! let ca = std::fs::read("custodia-data/tls/ca.pem").unwrap();
//! let mut alice = custodia_sdk::Client::new("https://127.0.0.1:8443", &ca)?;
//! alice.login("alice", "correct horse battery", "laptop").await?;
//! let chat = alice.open_direct("bob").await?;
//! alice.send(chat.id, "hello-1", "hi Bob").await?;
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `client` — [`Client`]: accounts, sessions, conversations, messages over HTTPS.
//! - `live` — [`Connection`]: the WebSocket, with catch-up and de-duplication.
//! - `staff` — the staff API (sign-in with TOTP, staff accounts).
//! - `tls` — the TLS 1.3 client configuration trusting the deployment's CA.

mod client;
mod live;
mod positions;
mod staff;
mod tls;

pub use client::{Client, SdkError, is_unauthorized};
pub use custodia_proto as proto;
pub use live::{Connection, Receiver, Sender};
pub use positions::Positions;
pub use reqwest::Method;
pub use tokio_tungstenite::tungstenite::Message as WsMessage;
