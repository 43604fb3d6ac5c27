//! Safety settings, connections and blocks on SQLite.

use async_trait::async_trait;
use custodia_core::{Timestamp, UserId, WhoCanMessage};
use custodia_store::{ConnectionRecord, SafetyStore, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{SqliteStore, map_err};

/// The pair's key: the lower id first.
fn pair(a: UserId, b: UserId) -> (Uuid, Uuid) {
    if a.as_uuid() <= b.as_uuid() {
        (*a.as_uuid(), *b.as_uuid())
    } else {
        (*b.as_uuid(), *a.as_uuid())
    }
}

fn record(row: &Row<'_>) -> rusqlite::Result<ConnectionRecord> {
    let (low, high): (Uuid, Uuid) = (row.get("low")?, row.get("high")?);
    let requested_by: Uuid = row.get("requested_by")?;
    let other = if requested_by == low { high } else { low };
    Ok(ConnectionRecord {
        requested_by: UserId::from_uuid(requested_by),
        other: UserId::from_uuid(other),
        accepted: row.get("accepted")?,
        at: Timestamp::from_millis(row.get("at")?),
    })
}

fn find(c: &Connection, a: UserId, b: UserId) -> rusqlite::Result<Option<ConnectionRecord>> {
    let (low, high) = pair(a, b);
    c.prepare_cached(
        "SELECT low, high, requested_by, accepted, at FROM connections WHERE low = ?1 AND high = ?2",
    )?
    .query_row(params![low, high], record)
    .optional()
}

#[async_trait]
impl SafetyStore for SqliteStore {
    async fn set_who_can_message(&self, user: UserId, setting: WhoCanMessage) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO message_settings (user_id, who) VALUES (?1, ?2) \
                     ON CONFLICT (user_id) DO UPDATE SET who = excluded.who",
                    params![user.as_uuid(), setting.as_str()],
                )
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn who_can_message(&self, user: UserId) -> StoreResult<Option<WhoCanMessage>> {
        let raw: Option<String> = self
            .read(move |c| {
                c.prepare_cached("SELECT who FROM message_settings WHERE user_id = ?1")?
                    .query_row([user.as_uuid()], |r| r.get(0))
                    .optional()
            })
            .await?;
        raw.map(|w| {
            WhoCanMessage::parse(&w)
                .map_err(|_| custodia_store::StoreError::Corrupt("message setting".into()))
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
            .write(move |c| {
                let (low, high) = pair(from, to);
                match find(c, from, to).map_err(map_err)? {
                    None => {
                        c.execute(
                            "INSERT INTO connections (low, high, requested_by, accepted, at) \
                             VALUES (?1, ?2, ?3, 0, ?4)",
                            params![low, high, from.as_uuid(), at.as_millis()],
                        )
                        .map_err(map_err)?;
                    }
                    Some(r) if !r.accepted && r.requested_by == to => {
                        c.execute(
                            "UPDATE connections SET accepted = 1, at = ?3 WHERE low = ?1 AND high = ?2",
                            params![low, high, at.as_millis()],
                        )
                        .map_err(map_err)?;
                    }
                    Some(_) => {}
                }
                find(c, from, to)
                    .map_err(map_err)?
                    .ok_or_else(|| custodia_store::StoreError::Backend("connection vanished".into()))
            })
            .await
    }

    async fn remove_connection(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                let (low, high) = pair(a, b);
                c.execute(
                    "DELETE FROM connections WHERE low = ?1 AND high = ?2",
                    params![low, high],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn connection(&self, a: UserId, b: UserId) -> StoreResult<Option<ConnectionRecord>> {
        self.read(move |c| find(c, a, b)).await
    }

    async fn connections_of(&self, user: UserId) -> StoreResult<Vec<ConnectionRecord>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT low, high, requested_by, accepted, at FROM connections \
                 WHERE low = ?1 OR high = ?1 ORDER BY at",
            )?
            .query_map([user.as_uuid()], record)?
            .collect()
        })
        .await
    }

    async fn block(&self, blocker: UserId, blocked: UserId, at: Timestamp) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO blocks (blocker, blocked, at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (blocker, blocked) DO NOTHING",
                    params![blocker.as_uuid(), blocked.as_uuid(), at.as_millis()],
                )
                .map_err(map_err)?;
                let (low, high) = pair(blocker, blocked);
                c.execute(
                    "DELETE FROM connections WHERE low = ?1 AND high = ?2",
                    params![low, high],
                )
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    "DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2",
                    params![blocker.as_uuid(), blocked.as_uuid()],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn is_blocked(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2")?
                .query_row(params![blocker.as_uuid(), blocked.as_uuid()], |_| Ok(()))
                .optional()
                .map(|f| f.is_some())
        })
        .await
    }

    async fn blocked_either_way(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT 1 FROM blocks WHERE (blocker = ?1 AND blocked = ?2) \
                 OR (blocker = ?2 AND blocked = ?1) LIMIT 1",
            )?
            .query_row(params![a.as_uuid(), b.as_uuid()], |_| Ok(()))
            .optional()
            .map(|f| f.is_some())
        })
        .await
    }

    async fn blocked_with(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT blocked FROM blocks WHERE blocker = ?1 \
                 UNION SELECT blocker FROM blocks WHERE blocked = ?1",
            )?
            .query_map([user.as_uuid()], |r| Ok(UserId::from_uuid(r.get(0)?)))?
            .collect()
        })
        .await
    }

    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        self.read(move |c| {
            c.prepare_cached("SELECT blocked FROM blocks WHERE blocker = ?1 ORDER BY at")?
                .query_map([blocker.as_uuid()], |r| Ok(UserId::from_uuid(r.get(0)?)))?
                .collect()
        })
        .await
    }
}
