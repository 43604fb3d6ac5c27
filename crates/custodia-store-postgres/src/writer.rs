//! Group commit on PostgreSQL: a writer lane takes whatever writes are queued on it and
//! runs them in one transaction, each inside its own savepoint (one failing write does
//! not fail the others), and answers nobody before COMMIT has returned. The database
//! syncs each commit (`synchronous_commit` as the server sets it; `on` by default), so a
//! whole batch costs one WAL flush instead of one per write.
//!
//! A node runs several lanes, each on its own connection, so round trips to the database
//! overlap: lane 0 takes the writes that lock no conversation (accounts, sessions, staff,
//! cases, the log), and each conversation's writes always go to the same one of the other
//! lanes (by its id), so they stay in order and lanes of one node never wait on each other.
//!
//! Several nodes write to one database at once. Their batches take row locks (a
//! conversation's sequence counter) and the log's advisory lock; so that two batches
//! never wait on each other in a cycle, each batch runs its writes in one global order:
//! writes that lock nothing shared first, then by conversation id, then log appends.
//! A deadlock that happens anyway (PostgreSQL detects it) fails only the write whose
//! statement was chosen, which is answered with an error and never acknowledged.

use std::sync::Arc;
use std::time::Instant;

use custodia_store::{CommitObserver, StoreError, StoreResult};
use futures_util::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::map_err;

/// Most operations that share one commit.
const MAX_BATCH: usize = 1024;
/// Operations waiting for the writer; senders wait when it is full (backpressure).
const QUEUE: usize = 8192;

/// What shared lock a write takes, which fixes its place in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lock {
    /// Only rows of its own (a user, a session, a case, …).
    Own,
    /// The row of one conversation (its sequence counter or membership).
    Conversation(uuid::Uuid),
    /// The transparency log's advisory lock.
    Log,
}

/// Runs after COMMIT with its outcome (`Some` if the commit failed) and answers the caller.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One queued operation: applies itself (inside a savepoint if it shares the transaction)
/// and returns whether it failed, and its completion.
type Apply =
    Box<dyn for<'c> FnOnce(&'c mut PgConnection, bool) -> BoxFuture<'c, (bool, Completion)> + Send>;

struct Job {
    lock: Lock,
    apply: Apply,
}

/// A handle to the writer lanes. Their tasks stop once every handle is dropped and the
/// queues are drained.
#[derive(Clone)]
pub(crate) struct Writer {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl Writer {
    /// Starts `lanes` writer tasks (at least two) on connections of `pool`.
    pub(crate) fn spawn(pool: PgPool, observer: Arc<dyn CommitObserver>, lanes: usize) -> Self {
        let lanes = (0..lanes.max(2))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(run(pool.clone(), rx, observer.clone()));
                tx
            })
            .collect();
        Self { lanes }
    }

    /// The lane of a write that takes `lock`.
    fn lane(&self, lock: Lock) -> &mpsc::Sender<Job> {
        let index = match lock {
            Lock::Own | Lock::Log => 0,
            Lock::Conversation(id) => {
                let spread = (self.lanes.len() - 1) as u128;
                1 + usize::try_from(id.as_u128() % spread).unwrap_or(0)
            }
        };
        &self.lanes[index]
    }

    /// Queues `op` and waits until it is committed (or has failed).
    pub(crate) async fn write<T, F>(&self, lock: Lock, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let apply: Apply = Box::new(move |conn, shared| {
            Box::pin(async move {
                let result = if shared {
                    in_savepoint(conn, op).await
                } else {
                    op(conn).await
                };
                let failed = result.is_err();
                let done = Box::new(move |commit_error: Option<&StoreError>| {
                    let outcome = match (commit_error, result) {
                        (_, Err(e)) => Err(e),
                        (Some(e), Ok(_)) => {
                            Err(StoreError::Unavailable(format!("commit failed: {e}")))
                        }
                        (None, ok) => ok,
                    };
                    // The caller may have gone away; the write stands either way.
                    let _ = reply.send(outcome);
                }) as Completion;
                (failed, done)
            })
        });
        self.lane(lock)
            .send(Job { lock, apply })
            .await
            .map_err(|_| StoreError::Unavailable("the store is shut down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the write was not committed".into()))?
    }
}

async fn in_savepoint<T, F>(conn: &mut PgConnection, op: F) -> StoreResult<T>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, StoreResult<T>>,
{
    step(conn, "SAVEPOINT op").await?;
    let result = op(&mut *conn).await;
    if result.is_err() {
        step(conn, "ROLLBACK TO SAVEPOINT op").await?;
    }
    step(conn, "RELEASE SAVEPOINT op").await?;
    result
}

async fn step(conn: &mut PgConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(map_err)
}

/// A lost or full database fails every write the same way: logged once per 10 s with a
/// count.
static THROTTLE: std::sync::LazyLock<custodia_store::LogThrottle> =
    std::sync::LazyLock::new(|| {
        custodia_store::LogThrottle::new(std::time::Duration::from_secs(10))
    });

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>, observer: Arc<dyn CommitObserver>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Stable: writes to one conversation keep their queue order.
        batch.sort_by_key(|j: &Job| j.lock);
        let started = Instant::now();
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                // Dropping the jobs drops their reply channels: every caller gets an
                // error and nothing was acknowledged.
                if let Some(left_out) = THROTTLE.admit(&e.to_string(), Instant::now()) {
                    tracing::error!(error = %e, operations = batch.len(), left_out, "no database connection for a write");
                }
                batch.clear();
                continue;
            }
        };
        if let Err(e) = step(&mut conn, "BEGIN").await {
            if let Some(left_out) = THROTTLE.admit(&e.to_string(), Instant::now()) {
                tracing::error!(error = %e, operations = batch.len(), left_out, "cannot begin a write transaction");
            }
            batch.clear();
            continue;
        }
        // A write alone in its transaction needs no savepoint: if it fails, the
        // transaction is rolled back instead of committed.
        let shared = batch.len() > 1;
        let mut completions = Vec::with_capacity(batch.len());
        let mut alone_failed = false;
        for job in batch.drain(..) {
            let (failed, done) = (job.apply)(&mut conn, shared).await;
            alone_failed |= failed && !shared;
            completions.push(done);
        }
        if alone_failed {
            if let Err(e) = step(&mut conn, "ROLLBACK").await {
                tracing::warn!(error = %e, "rollback failed");
                drop(conn.detach());
            }
            for done in completions {
                done(None);
            }
            continue;
        }
        let commit = step(&mut conn, "COMMIT").await;
        match &commit {
            Ok(()) => observer.committed(completions.len(), started.elapsed()),
            Err(e) => {
                if let Some(left_out) = THROTTLE.admit(&e.to_string(), Instant::now()) {
                    tracing::error!(error = %e, operations = completions.len(), left_out, "commit failed");
                }
                // The connection's state is unknown: close it rather than reuse it.
                drop(conn.detach());
            }
        }
        for done in completions {
            done(commit.as_ref().err());
        }
    }
    tracing::debug!("store writer stopped");
}
