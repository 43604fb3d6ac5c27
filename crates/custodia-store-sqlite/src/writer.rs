//! The single writer: owns the only write connection and commits whatever is queued in
//! one transaction (group commit). Each operation runs inside its own savepoint, so one
//! failing operation does not fail the others in its batch; nothing is answered before
//! the batch's COMMIT has returned (and, with `synchronous = FULL`, reached the disk).

use std::sync::Arc;
use std::time::Instant;

use custodia_store::{CommitObserver, StoreError, StoreResult};
use futures_util::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::map_err;

/// Most operations that share one commit.
const MAX_BATCH: usize = 512;
/// Operations waiting for the writer; senders wait when it is full (backpressure).
const QUEUE: usize = 4096;

/// Runs after COMMIT with its outcome (`Some` if the commit failed) and answers the caller.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One queued operation: applies itself inside a savepoint and returns its completion.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Completion> + Send>;

/// A handle to the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `conn`.
    pub(crate) fn spawn(conn: SqliteConnection, observer: Arc<dyn CommitObserver>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, rx, observer));
        Self { tx }
    }

    /// Queues `op` and waits until it is committed durably (or has failed).
    pub(crate) async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = in_savepoint(conn, op).await;
                Box::new(move |commit_error: Option<&StoreError>| {
                    let outcome = match commit_error {
                        Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                        None => result,
                    };
                    // The caller may have gone away; the write stands either way.
                    let _ = reply.send(outcome);
                }) as Completion
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

async fn in_savepoint<T, F>(conn: &mut SqliteConnection, op: F) -> StoreResult<T>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>,
{
    exec(conn, "SAVEPOINT op").await?;
    let result = op(&mut *conn).await;
    if result.is_err() {
        exec(conn, "ROLLBACK TO op").await?;
    }
    exec(conn, "RELEASE op").await?;
    result
}

/// Runs one fixed statement. (`query`, not `raw_sql`: the latter's future cannot be
/// proven `Send` here, sqlx issue #3150.)
async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(map_err)
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    observer: Arc<dyn CommitObserver>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await {
            // Dropping the jobs drops their reply channels: every caller gets an error and
            // nothing was acknowledged.
            tracing::error!(error = %e, operations = batch.len(), "cannot begin a write transaction");
            batch.clear();
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            completions.push(job(&mut conn).await);
        }
        let commit = sqlx::query("COMMIT")
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(map_err);
        if let Err(e) = &commit {
            tracing::error!(error = %e, operations = completions.len(), "commit failed");
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
        } else {
            observer.committed(completions.len(), started.elapsed());
        }
        for done in completions {
            done(commit.as_ref().err());
        }
    }
    tracing::debug!("store writer stopped");
}
