//! The single writer: a thread that owns the only write connection and commits whatever
//! is queued in one transaction (group commit). Each operation runs inside its own
//! savepoint, so one failing operation does not fail the others in its batch; nothing is
//! answered before the batch's COMMIT has returned (and, with `synchronous = FULL`,
//! reached the disk). A whole batch runs on this thread without handing off per
//! statement.

use std::sync::Arc;
use std::time::Instant;

use custodia_store::{CommitObserver, StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::map_err;

/// Most operations that share one commit.
const MAX_BATCH: usize = 1024;
/// Operations waiting for the writer; senders wait when it is full (backpressure).
const QUEUE: usize = 8192;

/// Runs after COMMIT with its outcome (`Some` if the commit failed) and answers the caller.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One queued operation: applies itself inside a savepoint and returns its completion.
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// A handle to the writer thread. The thread stops once every handle is dropped and
/// the queue is drained.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn spawn(
        conn: Connection,
        observer: Arc<dyn CommitObserver>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("custodia-sqlite-writer".into())
            .spawn(move || run(&conn, rx, &*observer))?;
        Ok(Self { tx })
    }

    /// Queues `op` and waits until it is committed durably (or has failed).
    pub(crate) async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, op);
            Box::new(move |commit_error: Option<&StoreError>| {
                let outcome = match commit_error {
                    Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                    None => result,
                };
                // The caller may have gone away; the write stands either way.
                let _ = reply.send(outcome);
            })
        });
        self.tx
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the store is shut down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the write was aborted".into()))?
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Cached statements: these run for every write, so they are parsed once.
    let step = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(map_err)
    };
    step("SAVEPOINT op")?;
    let result = op(conn);
    if result.is_err() {
        step("ROLLBACK TO op")?;
    }
    step("RELEASE op")?;
    result
}

/// A full disk fails every commit the same way: logged once per 10 s with a count.
static THROTTLE: std::sync::LazyLock<custodia_store::LogThrottle> =
    std::sync::LazyLock::new(|| {
        custodia_store::LogThrottle::new(std::time::Duration::from_secs(10))
    });

fn run(conn: &Connection, mut rx: mpsc::Receiver<Job>, observer: &dyn CommitObserver) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs drops their reply channels: every caller gets an error and
            // nothing was acknowledged.
            if let Some(left_out) = THROTTLE.admit(&e.to_string(), Instant::now()) {
                tracing::error!(error = %e, operations = batch.len(), left_out, "cannot begin a write transaction");
            }
            batch.clear();
            continue;
        }
        let completions: Vec<Completion> = batch.drain(..).map(|job| job(conn)).collect();
        let commit = conn.execute_batch("COMMIT").map_err(map_err);
        if let Err(e) = &commit {
            if let Some(left_out) = THROTTLE.admit(&e.to_string(), Instant::now()) {
                tracing::error!(error = %e, operations = completions.len(), left_out, "commit failed");
            }
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            observer.committed(completions.len(), started.elapsed());
        }
        for done in completions {
            done(commit.as_ref().err());
        }
    }
    tracing::debug!("store writer stopped");
}
