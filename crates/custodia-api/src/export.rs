//! `GET /v1/me/export`: everything the service holds about the caller — profile,
//! settings, connections, blocks, access notices, and every conversation with the
//! messages they can see — as a zip of JSON files with a README. Streamed: a page of
//! messages is read, written into the zip and sent before the next is read, through
//! bounded channels, so memory stays flat however long the history.

use std::io::Write;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use custodia_proto as wire;
use custodia_service::Principal;
use custodia_store::SeqRange;
use tokio::sync::mpsc;

use crate::extract::Authed;
use crate::problem::ApiError;
use crate::{AppState, convert};

/// Messages read per page.
const PAGE: u32 = 500;
/// Chunks in flight between the zip writer and the connection.
const IN_FLIGHT: usize = 8;

const README: &str = "\
Your custodia data, as the service holds it, at the time of the export.

profile.json          your account: id, username, date of birth, when it was created
settings.json         who can message you
connections.json      your connections (mutual), and requests either way
blocks.json           the accounts you block
access-notices.json   every time staff read messages of yours: when, their role, why,
                      the case, and the audit log entry that records it
conversations.json    your conversations: kind, title, members, unread count
conversations/ID.json each conversation's messages you can see, oldest first: number,
                      sender, time (Unix ms), state and text

Messages that were deleted, or that a block hides from you, appear with their state
and without text. Attachments appear in messages as their ids; download them with
GET /v1/attachments/ID while the conversation keeps them.
";

/// One step of the zip: a new file, or bytes of the current one.
enum Part {
    File(String),
    Data(Vec<u8>),
    /// Reading failed: the download is cut short rather than looking complete.
    Failed(String),
}

pub(crate) async fn export(
    State(s): State<AppState>,
    Authed(who): Authed,
) -> Result<Response, ApiError> {
    s.governance.begin_self_export(&who).await?;
    let (parts, parts_rx) = mpsc::channel::<Part>(IN_FLIGHT);
    let (body, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || write_zip(parts_rx, body));
    let name = format!("custodia-export-{}.zip", who.username);
    tokio::spawn(async move {
        if let Err(e) = produce(&s, &who, &parts).await {
            let _ = parts.send(Part::Failed(e)).await;
        }
    });
    let stream = futures_util::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Reads the member's data in order and hands it to the zip writer.
async fn produce(s: &AppState, who: &Principal, parts: &mpsc::Sender<Part>) -> Result<(), String> {
    let file = async |name: &str, bytes: Vec<u8>| -> Result<(), String> {
        send(parts, Part::File(name.to_owned())).await?;
        send(parts, Part::Data(bytes)).await
    };
    file("README.txt", README.as_bytes().to_vec()).await?;
    file(
        "profile.json",
        json(&wire::ExportProfile {
            user_id: *who.user_id.as_uuid(),
            username: who.username.to_string(),
            date_of_birth: who.birth_date.to_string(),
            created_at_ms: s
                .service
                .created_at(who)
                .await
                .map_err(|e| e.to_string())?
                .as_millis(),
        }),
    )
    .await?;
    let w = s
        .service
        .who_can_message(who)
        .await
        .map_err(|e| e.to_string())?;
    file(
        "settings.json",
        json(&wire::Settings {
            who_can_message: w.as_str().into(),
        }),
    )
    .await?;
    let connections: Vec<wire::Connection> = s
        .service
        .connections(who)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(crate::routes::connection)
        .collect();
    file("connections.json", json(&connections)).await?;
    let blocks: Vec<String> = s
        .service
        .blocked(who)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(ToString::to_string)
        .collect();
    file("blocks.json", json(&blocks)).await?;
    let notices: Vec<wire::AccessNotice> = s
        .service
        .access_notices(who)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(convert::access_notice)
        .collect();
    file("access-notices.json", json(&notices)).await?;
    let conversations = s
        .service
        .conversations(who)
        .await
        .map_err(|e| e.to_string())?;
    let listed: Vec<wire::Conversation> = conversations.iter().map(convert::conversation).collect();
    file("conversations.json", json(&listed)).await?;

    for c in &conversations {
        send(parts, Part::File(format!("conversations/{}.json", c.id))).await?;
        let mut after = 0;
        let mut first = true;
        send(parts, Part::Data(b"[".to_vec())).await?;
        loop {
            let page = s
                .service
                .history(who, c.id, Some(SeqRange::After(after)), PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let mut chunk = Vec::new();
            for m in &page.messages {
                chunk.extend_from_slice(if first { b"\n" } else { b",\n" });
                first = false;
                serde_json::to_writer(&mut chunk, &convert::message(m))
                    .map_err(|e| e.to_string())?;
                after = m.seq;
            }
            send(parts, Part::Data(chunk)).await?;
            if !page.has_more || page.messages.is_empty() {
                break;
            }
        }
        send(parts, Part::Data(b"\n]\n".to_vec())).await?;
    }
    Ok(())
}

async fn send(parts: &mpsc::Sender<Part>, part: Part) -> Result<(), String> {
    // The writer is gone only when the client went away: stop reading.
    parts
        .send(part)
        .await
        .map_err(|_| "the download was abandoned".to_owned())
}

/// Pretty JSON of a value, one file's worth.
fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Writes the zip (on a blocking thread) into the connection's channel.
fn write_zip(mut parts: mpsc::Receiver<Part>, body: mpsc::Sender<Result<Bytes, std::io::Error>>) {
    let out = std::io::BufWriter::with_capacity(64 * 1024, Chunks(body.clone()));
    let mut zip = zip::ZipWriter::new_stream(out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let result = (|| -> Result<(), String> {
        while let Some(part) = parts.blocking_recv() {
            match part {
                Part::File(name) => zip.start_file(name, options).map_err(|e| e.to_string())?,
                Part::Data(bytes) => zip.write_all(&bytes).map_err(|e| e.to_string())?,
                Part::Failed(why) => return Err(why),
            }
        }
        zip.finish()
            .map_err(|e| e.to_string())?
            .into_inner()
            .flush()
            .map_err(|e| e.to_string())
    })();
    if let Err(why) = result {
        tracing::warn!(error = %why, "a self-export was cut short");
        let _ = body.blocking_send(Err(std::io::Error::other(why)));
    }
}

/// The connection's channel as a `Write`: each buffer becomes one chunk of the body.
struct Chunks(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
