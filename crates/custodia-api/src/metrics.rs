//! Prometheus metrics: sends, deliveries, commit batch size, commit (fsync) latency, live
//! sessions.

use std::sync::Mutex;

use std::time::Duration;

use custodia_store::CommitObserver;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's metrics.
pub struct Metrics {
    // std Mutex: held only while encoding the text exposition, never across an await.
    registry: Mutex<Registry>,
    /// Messages accepted (new, durable).
    pub sends: Counter,
    /// Events written to live WebSocket sessions.
    pub deliveries: Counter,
    /// Live WebSocket sessions on this node.
    pub sessions: Gauge<i64, std::sync::atomic::AtomicI64>,
    commit_batch: Histogram,
    commit_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("custodia");
        let sends = Counter::default();
        let deliveries = Counter::default();
        let sessions = Gauge::default();
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register("sends", "Messages accepted and durable", sends.clone());
        registry.register(
            "deliveries",
            "Events written to live sessions",
            deliveries.clone(),
        );
        registry.register("sessions", "Live WebSocket sessions", sessions.clone());
        registry.register(
            "commit_batch_size",
            "Writes sharing one durable commit",
            commit_batch.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time of one durable commit including fsync",
            commit_seconds.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            sends,
            deliveries,
            sessions,
            commit_batch,
            commit_seconds,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, operations: usize, elapsed: Duration) {
        self.commit_batch.observe(operations as f64);
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }
}
