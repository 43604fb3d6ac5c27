//! Safety settings, connections and blocks on PostgreSQL.

use async_trait::async_trait;
use custodia_core::{Timestamp, UserId, WhoCanMessage};
use custodia_store::{ConnectionRecord, SafetyStore, StoreError, StoreResult};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::rows::{get, millis, uuid};
use crate::writer::Lock;
use crate::{PgStore, map_err};

/// The pair's key: the lower id first.
fn pair(a: UserId, b: UserId) -> (Uuid, Uuid) {
    if a.as_uuid() <= b.as_uuid() {
        (*a.as_uuid(), *b.as_uuid())
    } else {
        (*b.as_uuid(), *a.as_uuid())
    }
}

fn record(row: &PgRow) -> StoreResult<ConnectionRecord> {
    let (low, high) = (uuid(row, "low")?, uuid(row, "high")?);
    let requested_by = uuid(row, "requested_by")?;
    let other = if requested_by == low { high } else { low };
    Ok(ConnectionRecord {
        requested_by: UserId::from_uuid(requested_by),
        other: UserId::from_uuid(other),
        accepted: get(row, "accepted")?,
        at: millis(row, "at")?,
    })
}

const FIND: &str =
    "SELECT low, high, requested_by, accepted, at FROM connections WHERE low = $1 AND high = $2";

async fn find(c: &mut PgConnection, a: UserId, b: UserId) -> StoreResult<Option<ConnectionRecord>> {
    let (low, high) = pair(a, b);
    sqlx::query(FIND)
        .bind(low)
        .bind(high)
        .fetch_optional(c)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(record)
        .transpose()
}

/// One boolean answer of a query on the pool.
async fn exists(store: &PgStore, sql: &'static str, a: Uuid, b: Uuid) -> StoreResult<bool> {
    sqlx::query_scalar::<_, bool>(sql)
        .bind(a)
        .bind(b)
        .fetch_one(&store.pool)
        .await
        .map_err(map_err)
}

/// User ids answered by a query on the pool.
async fn user_ids(store: &PgStore, sql: &'static str, user: UserId) -> StoreResult<Vec<UserId>> {
    let found: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(user.as_uuid())
        .fetch_all(&store.pool)
        .await
        .map_err(map_err)?;
    Ok(found.into_iter().map(UserId::from_uuid).collect())
}

#[async_trait]
impl SafetyStore for PgStore {
    async fn set_who_can_message(&self, user: UserId, setting: WhoCanMessage) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            "INSERT INTO message_settings (user_id, who) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET who = excluded.who",
            move |q| q.bind(*user.as_uuid()).bind(setting.as_str()),
        )
        .await
        .map(drop)
    }

    async fn who_can_message(&self, user: UserId) -> StoreResult<Option<WhoCanMessage>> {
        let raw: Option<String> =
            sqlx::query_scalar("SELECT who FROM message_settings WHERE user_id = $1")
                .bind(user.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        raw.map(|w| {
            WhoCanMessage::parse(&w).map_err(|_| StoreError::Corrupt("message setting".into()))
        })
        .transpose()
    }

    async fn request_connection(
        &self,
        from: UserId,
        to: UserId,
        at: Timestamp,
    ) -> StoreResult<ConnectionRecord> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let (low, high) = pair(from, to);
                    // Insert, or accept the other's pending request, in one statement so
                    // two nodes racing cannot both insert.
                    sqlx::query(
                        "INSERT INTO connections (low, high, requested_by, accepted, at) \
                         VALUES ($1, $2, $3, false, $4) \
                         ON CONFLICT (low, high) DO UPDATE SET accepted = true, at = $4 \
                         WHERE connections.accepted = false AND connections.requested_by <> $3",
                    )
                    .bind(low)
                    .bind(high)
                    .bind(from.as_uuid())
                    .bind(at.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    find(c, from, to)
                        .await?
                        .ok_or_else(|| StoreError::Backend("connection vanished".into()))
                })
            })
            .await
    }

    async fn remove_connection(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let (low, high) = pair(a, b);
        self.statement(
            Lock::Own,
            "DELETE FROM connections WHERE low = $1 AND high = $2",
            move |q| q.bind(low).bind(high),
        )
        .await
        .map(|n| n == 1)
    }

    async fn connection(&self, a: UserId, b: UserId) -> StoreResult<Option<ConnectionRecord>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        find(&mut c, a, b).await
    }

    async fn connections_of(&self, user: UserId) -> StoreResult<Vec<ConnectionRecord>> {
        self.list(
            sqlx::query(
                "SELECT low, high, requested_by, accepted, at FROM connections \
             WHERE low = $1 OR high = $1 ORDER BY at",
            )
            .bind(user.as_uuid()),
            record,
        )
        .await
    }

    async fn block(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> StoreResult<()> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO blocks (blocker, blocked, at) VALUES ($1, $2, $3) \
                         ON CONFLICT (blocker, blocked) DO NOTHING",
                    )
                    .bind(blocker.as_uuid())
                    .bind(blocked.as_uuid())
                    .bind(at.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let (low, high) = pair(blocker, blocked);
                    sqlx::query("DELETE FROM connections WHERE low = $1 AND high = $2")
                        .bind(low)
                        .bind(high)
                        .execute(&mut *c)
                        .await
                        .map(drop)
                        .map_err(map_err)
                })
            })
            .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.statement(
            Lock::Own,
            "DELETE FROM blocks WHERE blocker = $1 AND blocked = $2",
            move |q| q.bind(*blocker.as_uuid()).bind(*blocked.as_uuid()),
        )
        .await
        .map(|n| n == 1)
    }

    async fn is_blocked(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        exists(
            self,
            "SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2)",
            *blocker.as_uuid(),
            *blocked.as_uuid(),
        )
        .await
    }

    async fn blocked_either_way(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        exists(
            self,
            "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker = $1 AND blocked = $2) \
             OR (blocker = $2 AND blocked = $1))",
            *a.as_uuid(),
            *b.as_uuid(),
        )
        .await
    }

    async fn blocked_with(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        user_ids(
            self,
            "SELECT blocked FROM blocks WHERE blocker = $1 \
             UNION SELECT blocker FROM blocks WHERE blocked = $1",
            user,
        )
        .await
    }

    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        user_ids(
            self,
            "SELECT blocked FROM blocks WHERE blocker = $1 ORDER BY at",
            blocker,
        )
        .await
    }
}
