//! Helpers shared by the end-to-end tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use base64::Engine;

use custodia_sdk::proto::{Ack, Message, ServerFrame};
use custodia_sdk::{Connection, SdkError};

/// Generous bound for anything to arrive; tests never depend on speed, only on not hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The next frame, failing the test on timeout, error or close.
pub async fn frame(conn: &mut Connection) -> ServerFrame {
    match tokio::time::timeout(PATIENCE, conn.next()).await {
        Ok(Some(Ok(f))) => f,
        Ok(Some(Err(e))) => panic!("connection error: {e}"),
        Ok(None) => panic!("connection closed"),
        Err(_) => panic!("no frame within {PATIENCE:?}"),
    }
}

/// Syncs with the given cursors and returns the caught-up messages.
pub async fn sync(
    conn: &mut Connection,
    cursors: std::collections::HashMap<uuid::Uuid, u64>,
) -> Vec<Message> {
    conn.sync(cursors).await.expect("sync");
    let mut out = Vec::new();
    loop {
        match frame(conn).await {
            ServerFrame::Message(m) => out.push(m),
            ServerFrame::Synced { .. } => return out,
            other => panic!("unexpected frame during sync: {other:?}"),
        }
    }
}

/// Reads frames until `n` messages arrived, ignoring other kinds.
pub async fn messages(conn: &mut Connection, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    while out.len() < n {
        if let ServerFrame::Message(m) = frame(conn).await {
            out.push(m);
        }
    }
    out
}

/// Reads frames until the ack for `client_id`.
pub async fn ack(conn: &mut Connection, client_id: &str) -> Ack {
    loop {
        match frame(conn).await {
            ServerFrame::Ack(a) if a.client_id == client_id => return a,
            ServerFrame::Error {
                client_id: Some(c),
                problem,
            } if c == client_id => panic!("send refused: {problem:?}"),
            _ => {}
        }
    }
}

/// Sends a ping and returns every message frame that arrives before the pong.
pub async fn drain_until_pong(conn: &mut Connection) -> Vec<Message> {
    conn.ping().await.expect("ping");
    let mut extra = Vec::new();
    loop {
        match frame(conn).await {
            ServerFrame::Pong => return extra,
            ServerFrame::Message(m) => extra.push(m),
            _ => {}
        }
    }
}

/// The status of an SDK error, failing the test if the call succeeded.
pub fn status<T: std::fmt::Debug>(r: Result<T, SdkError>) -> u16 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .status()
            .unwrap_or_else(|| panic!("expected a problem answer, got {e}")),
    }
}

/// Every way a string could be spelled out in bytes: raw, hex, and base64 (standard and
/// URL-safe) at each of the three alignments.
pub fn spellings(canary: &str) -> Vec<Vec<u8>> {
    let raw = canary.as_bytes();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![
        raw.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        for shift in 0..3 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(raw);
            let enc = engine.encode(&shifted);
            // Drop the characters that mix in the prefix or the padding.
            out.push(enc.as_bytes()[4..enc.len() - 4].to_vec());
        }
    }
    out
}

/// Sends up to 2,000 messages to `chat` over one WebSocket of `sender`, calls `stop` once
/// `after` of them are acknowledged (the burst goes on), and returns every acknowledged
/// client id with its sequence number.
pub async fn burst_until(
    sender: &custodia_sdk::Client,
    chat: uuid::Uuid,
    after: usize,
    stop: impl FnOnce(),
) -> std::collections::HashMap<String, u64> {
    let mut conn = sender.connect().await.unwrap();
    sync(&mut conn, std::collections::HashMap::new()).await;
    let (mut tx, mut rx) = conn.split();
    let sending = tokio::spawn(async move {
        for i in 0..2_000 {
            if tx
                .send(chat, &format!("burst-{i}"), &format!("burst message {i}"))
                .await
                .is_err()
            {
                break;
            }
        }
        tx
    });
    let mut acked = std::collections::HashMap::new();
    let mut stop = Some(stop);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(PATIENCE, rx.next()).await {
        if let ServerFrame::Ack(a) = frame {
            acked.insert(a.client_id, a.seq);
            if acked.len() == after
                && let Some(stop) = stop.take()
            {
                stop();
            }
        }
    }
    drop(sending.await);
    assert!(stop.is_none(), "the burst ended before {after} acks");
    acked
}

/// `history` holds every acknowledged message at its number, numbered without gaps and
/// with no client id twice.
pub fn assert_acked_kept(history: &[Message], acked: &std::collections::HashMap<String, u64>) {
    let stored: std::collections::HashMap<&str, u64> = history
        .iter()
        .map(|m| (m.client_id.as_str(), m.seq))
        .collect();
    for (client_id, seq) in acked {
        assert_eq!(
            stored.get(client_id.as_str()),
            Some(seq),
            "acknowledged {client_id} is lost or moved"
        );
    }
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "sequence numbers have no gaps"
    );
    assert_eq!(stored.len(), history.len(), "no client id stored twice");
}

/// A TLS client configuration trusting the server's CA, speaking only `versions`.
pub fn tls_client_config(
    ca_pem: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// Sends `request` (a whole raw HTTP/1.1 request, `Connection: close`) over TLS 1.3 to
/// `addr` (trusting `ca`) and reads the whole answer: status, head, and body bytes
/// (de-chunked if sent chunked). No client code of ours in between.
pub async fn raw_https(addr: &str, ca: &[u8], request: &[u8]) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = tokio_rustls::TlsConnector::from(tls_client_config(ca, &[&rustls::version::TLS13]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = tls.connect(name, tcp).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut body = bytes[split + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + n]);
            rest = &rest[line_end + 2 + n + 2..];
        }
        body = out;
    }
    (status, head, body)
}

/// The value of header `name` in an HTTP head, lowercased name match.
pub fn header_of(head: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .starts_with(&prefix)
            .then(|| l[prefix.len()..].trim().to_owned())
    })
}

/// A request for the content of messages `seqs` under `case`, for an hour.
pub fn content_request(
    case: uuid::Uuid,
    reason: &str,
    seqs: (u64, u64),
) -> custodia_sdk::proto::staff::CreateAccessRequest {
    custodia_sdk::proto::staff::CreateAccessRequest {
        case_id: case,
        reason: reason.into(),
        from_seq: seqs.0,
        to_seq: seqs.1,
        tier: "content".into(),
        duration_secs: 3600,
        justification: "needed for the case".into(),
    }
}

/// A legal officer's review accepting a legal request as served.
pub fn accept_in_full() -> custodia_sdk::proto::staff::ReviewLegalRequest {
    custodia_sdk::proto::staff::ReviewLegalRequest {
        outcome: "full".into(),
        reason: None,
        narrowing: None,
        accepted: Vec::new(),
    }
}
