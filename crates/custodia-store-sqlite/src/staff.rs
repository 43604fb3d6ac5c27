//! Staff accounts and sessions on SQLite.

use async_trait::async_trait;
use custodia_core::{SessionId, StaffId, StaffRole, Timestamp, Username};
use custodia_store::{
    SealedTotp, StaffRecord, StaffSessionRecord, StaffStore, StoreResult, TokenHash,
};
use rusqlite::{OptionalExtension, Row, params};

use crate::{SqliteStore, map_err};

const STAFF_COLUMNS: &str =
    "id, username, password_hash, totp_kek_version, totp_sealed, role, active, created_at";
const SESSION_COLUMNS: &str = "token_hash, id, staff_id, created_at, expires_at";

fn corrupt(col: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(format!("undecodable value in column {col}"))
}

fn staff(row: &Row<'_>) -> rusqlite::Result<StaffRecord> {
    let name: String = row.get("username")?;
    let role: String = row.get("role")?;
    Ok(StaffRecord {
        id: StaffId::from_uuid(row.get("id")?),
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        password_hash: row.get("password_hash")?,
        totp: SealedTotp {
            kek_version: row.get("totp_kek_version")?,
            bytes: row.get("totp_sealed")?,
        },
        role: StaffRole::parse(&role).map_err(|_| corrupt("role"))?,
        active: row.get("active")?,
        created_at: Timestamp::from_millis(row.get("created_at")?),
    })
}

fn session(row: &Row<'_>) -> rusqlite::Result<StaffSessionRecord> {
    let hash: Vec<u8> = row.get("token_hash")?;
    Ok(StaffSessionRecord {
        id: SessionId::from_uuid(row.get("id")?),
        staff_id: StaffId::from_uuid(row.get("staff_id")?),
        token_hash: TokenHash(hash.try_into().map_err(|_| corrupt("token_hash"))?),
        created_at: Timestamp::from_millis(row.get("created_at")?),
        expires_at: Timestamp::from_millis(row.get("expires_at")?),
    })
}

#[async_trait]
impl StaffStore for SqliteStore {
    async fn create_staff(&self, s: StaffRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO staff ({STAFF_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        s.id.as_uuid(),
                        s.username.as_str(),
                        s.password_hash,
                        s.totp.kek_version,
                        s.totp.bytes,
                        s.role.as_str(),
                        s.active,
                        s.created_at.as_millis()
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn staff_by_name(&self, name: &Username) -> StoreResult<Option<StaffRecord>> {
        let name = name.as_str().to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {STAFF_COLUMNS} FROM staff WHERE username = ?1"
            ))?
            .query_row([name], staff)
            .optional()
        })
        .await
    }

    async fn staff_by_id(&self, id: StaffId) -> StoreResult<Option<StaffRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = ?1"))?
                .query_row([id.as_uuid()], staff)
                .optional()
        })
        .await
    }

    async fn all_staff(&self) -> StoreResult<Vec<StaffRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {STAFF_COLUMNS} FROM staff ORDER BY created_at, id"
            ))?
            .query_map([], staff)?
            .collect()
        })
        .await
    }

    async fn update_staff(&self, id: StaffId, role: StaffRole, active: bool) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE staff SET role = ?2, active = ?3 WHERE id = ?1",
                        params![id.as_uuid(), role.as_str(), active],
                    )
                    .map_err(map_err)?;
                if !active {
                    c.execute(
                        "DELETE FROM staff_sessions WHERE staff_id = ?1",
                        [id.as_uuid()],
                    )
                    .map_err(map_err)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn use_totp_step(&self, id: StaffId, step: u64) -> StoreResult<bool> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE staff SET last_totp_step = ?2 \
                     WHERE id = ?1 AND (last_totp_step IS NULL OR last_totp_step < ?2)",
                    params![id.as_uuid(), step],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn create_staff_session(&self, s: StaffSessionRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO staff_sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        &s.token_hash.0[..],
                        s.id.as_uuid(),
                        s.staff_id.as_uuid(),
                        s.created_at.as_millis(),
                        s.expires_at.as_millis()
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn staff_session_by_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StaffSessionRecord>> {
        let hash = hash.0;
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM staff_sessions WHERE token_hash = ?1"
            ))?
            .query_row([&hash[..]], session)
            .optional()
        })
        .await
    }

    async fn delete_staff_session(&self, id: SessionId) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute("DELETE FROM staff_sessions WHERE id = ?1", [id.as_uuid()])
                    .map(|n| n == 1)
                    .map_err(map_err)
            })
            .await
    }
}
