//! The TLS 1.3-only listeners and the HTTP/1.1 connection loop, with limits at the edge.
//!
//! A slow or hostile client cannot hold the server: connections are capped in all and per
//! client address, TLS handshakes are capped (in all and per address) and time out, and a
//! connection that does not send a complete request head in time — half-sent headers, or
//! an idle keep-alive connection — is closed. Past the total cap the listener stops
//! accepting (clients wait in the kernel's backlog); past an address's cap its new
//! connections are closed at once, so one address cannot lock others out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Completed handshakes waiting for the connection loop to pick them up.
const BACKLOG: usize = 1024;

/// The limits a listener enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Open connections in all (handshaking included).
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_connections_per_address: usize,
    /// TLS handshakes in progress at once.
    pub max_handshakes: usize,
    /// TLS handshakes in progress from one client address.
    pub max_handshakes_per_address: usize,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Longest a client may take to send a request's head, and longest an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Once shutdown begins, how long requests in flight and live sessions get to finish;
    /// then every connection is closed, whatever its client is doing.
    pub shutdown_grace: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_address: 512,
            max_handshakes: 256,
            max_handshakes_per_address: 32,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A rustls server configuration that speaks only TLS 1.3, presenting `cert` (whose
/// certificate can be replaced while serving).
pub fn tls13_server_config(cert: Arc<ServerCert>) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate (chain) and key every handshake presents. [`ServerCert::replace`]
/// swaps them while serving: new handshakes get the new certificate, open connections
/// keep theirs (nothing is dropped).
#[derive(Debug)]
pub struct ServerCert {
    // std RwLock: read once per handshake, written on a reload; never held across an await.
    current: std::sync::RwLock<Arc<CertifiedKey>>,
}

impl ServerCert {
    /// From a PEM certificate chain and a PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            current: std::sync::RwLock::new(certified(cert_pem, key_pem)?),
        }))
    }

    /// Presents a new certificate and key from now on; on error the old ones stay.
    pub fn replace(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        let new = certified(cert_pem, key_pem)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
        Ok(())
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A certificate chain and its key, checked to belong together.
fn certified(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key PEM: {e}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("private key: {e}"))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| format!("the certificate and the key do not belong together: {e}"))?;
    Ok(Arc::new(certified))
}

/// Accepts TCP connections within the limits and yields them once their TLS handshake
/// has completed.
pub struct TlsListener {
    local: SocketAddr,
    header_timeout: Duration,
    shutdown_grace: Duration,
    ready: mpsc::Receiver<Accepted>,
    acceptor: tokio::task::JoinHandle<()>,
}

/// A connection whose handshake completed, with its place under the limits.
struct Accepted {
    tls: TlsStream<TcpStream>,
    peer: SocketAddr,
    slot: Slot,
}

impl TlsListener {
    /// Wraps a bound TCP listener.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        limits: EdgeLimits,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
        let addresses = Arc::new(Addresses::new(limits));
        let task = tokio::spawn(async move {
            loop {
                // At the cap, stop accepting: new clients wait in the kernel's backlog.
                let Ok(permit) = connections.clone().acquire_owned().await else {
                    break;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = Slot::enter(&addresses, peer.ip(), permit) else {
                    tracing::debug!(%peer, "connection refused: too many from this address");
                    continue;
                };
                let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "connection refused: too many handshakes");
                    continue;
                };
                let Some(shaking) = slot.handshaking() else {
                    tracing::debug!(%peer, "connection refused: too many handshakes from this address");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, ready) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let done =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream))
                            .await;
                    drop((handshake, shaking));
                    match done {
                        Ok(Ok(tls)) => {
                            let _ = ready.send(Accepted { tls, peer, slot }).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        Ok(Self {
            local,
            header_timeout: limits.header_timeout,
            shutdown_grace: limits.shutdown_grace,
            ready,
            acceptor: task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// The client's address, as `ConnectInfo` for every request.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// Serves `router` on every connection of `listener` until `shutdown` is cancelled. Then
/// it stops accepting, closes idle connections, lets requests in flight (and the live
/// `sessions`, if given) finish within the listener's shutdown grace, and after it closes
/// every connection left, so no client can hold the server open.
pub async fn serve_router(
    mut listener: TlsListener,
    router: axum::Router,
    shutdown: CancellationToken,
    sessions: Option<TaskTracker>,
) -> io::Result<()> {
    let connections = TaskTracker::new();
    // Cancelled when the grace is over: what is still open is closed.
    let kill = CancellationToken::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(listener.header_timeout)
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            next = listener.ready.recv() => match next {
                Some(a) => a,
                None => break,
            },
        };
        let Accepted { tls, peer, slot } = accepted;
        let service = router.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
                req
            },
        );
        let service = hyper::service::service_fn(move |req| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(service.oneshot(req).await.unwrap_or_else(|e| match e {})) }
        });
        let conn = http
            .serve_connection(TokioIo::new(tls), service)
            .with_upgrades();
        let (shutdown, kill) = (shutdown.clone(), kill.clone());
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = shutdown.cancelled() => {
                    // Finish the request in flight (if any), then close; at the end of
                    // the grace, close regardless (a half-sent request included).
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        ended = conn.as_mut() => ended,
                        () = kill.cancelled() => Ok(()),
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            // The connection's place under the limits is given back only now.
            drop(slot);
        });
    }
    let grace = listener.shutdown_grace;
    drop(listener);
    connections.close();
    if let Some(s) = &sessions {
        s.close();
    }
    let drained = async {
        connections.wait().await;
        if let Some(s) = &sessions {
            s.wait().await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            sessions = sessions.as_ref().map_or(0, TaskTracker::len),
            "still open at the end of the shutdown grace; closing them"
        );
        kill.cancel();
        connections.wait().await;
    }
    Ok(())
}

/// Open connections and handshakes per client address.
struct Addresses {
    limits: EdgeLimits,
    // std Mutex: held for one map update, never across an await.
    counts: Mutex<HashMap<IpAddr, (usize, usize)>>,
}

impl Addresses {
    fn new(limits: EdgeLimits) -> Self {
        Self {
            limits,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn update(&self, ip: IpAddr, f: impl FnOnce(&mut (usize, usize)) -> bool) -> bool {
        let Ok(mut counts) = self.counts.lock() else {
            return false;
        };
        let entry = counts.entry(ip).or_default();
        let ok = f(entry);
        if *entry == (0, 0) {
            counts.remove(&ip);
        }
        ok
    }
}

/// One connection's place under the limits: the total permit and its address's count,
/// both given back on drop.
struct Slot {
    addresses: Arc<Addresses>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn enter(addresses: &Arc<Addresses>, ip: IpAddr, permit: OwnedSemaphorePermit) -> Option<Self> {
        let max = addresses.limits.max_connections_per_address;
        addresses
            .update(ip, |(open, _)| {
                if *open >= max {
                    return false;
                }
                *open += 1;
                true
            })
            .then(|| Self {
                addresses: addresses.clone(),
                ip,
                _permit: permit,
            })
    }

    /// A place among this address's handshakes, given back on drop.
    fn handshaking(&self) -> Option<Handshaking> {
        let max = self.addresses.limits.max_handshakes_per_address;
        self.addresses
            .update(self.ip, |(_, shaking)| {
                if *shaking >= max {
                    return false;
                }
                *shaking += 1;
                true
            })
            .then(|| Handshaking {
                addresses: self.addresses.clone(),
                ip: self.ip,
            })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.addresses.update(self.ip, |(open, _)| {
            *open = open.saturating_sub(1);
            true
        });
    }
}

struct Handshaking {
    addresses: Arc<Addresses>,
    ip: IpAddr,
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.addresses.update(self.ip, |(_, shaking)| {
            *shaking = shaking.saturating_sub(1);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: usize, handshakes: usize) -> EdgeLimits {
        EdgeLimits {
            max_connections_per_address: per_address,
            max_handshakes_per_address: handshakes,
            ..EdgeLimits::default()
        }
    }

    #[test]
    fn an_address_gets_its_places_back_when_connections_end() {
        let addresses = Arc::new(Addresses::new(limits(2, 1)));
        let sem = Arc::new(Semaphore::new(10));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let permit = || sem.clone().try_acquire_owned().unwrap();
        let a = Slot::enter(&addresses, ip, permit()).unwrap();
        let b = Slot::enter(&addresses, ip, permit()).unwrap();
        assert!(
            Slot::enter(&addresses, ip, permit()).is_none(),
            "over the cap"
        );
        assert!(
            Slot::enter(&addresses, other, permit()).is_some(),
            "others unaffected"
        );
        let shaking = a.handshaking().unwrap();
        assert!(b.handshaking().is_none(), "one handshake per address");
        drop(shaking);
        assert!(b.handshaking().is_some());
        drop(a);
        assert!(
            Slot::enter(&addresses, ip, permit()).is_some(),
            "a place came back"
        );
        drop(b);
        assert_eq!(
            sem.available_permits(),
            10,
            "dropped slots give their permits back"
        );
    }
}
