//! Staff accounts and sessions on PostgreSQL.

use async_trait::async_trait;
use custodia_core::{SessionId, StaffId, StaffRole, Username};
use custodia_store::{
    SealedTotp, StaffRecord, StaffSessionRecord, StaffStore, StoreResult, TokenHash,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;

use crate::rows::{corrupt, get, hash32, millis, named, uuid};
use crate::writer::Lock;
use crate::{PgStore, map_err};

const STAFF_COLUMNS: &str =
    "id, username, password_hash, totp_kek_version, totp_sealed, role, active, created_at";
const SESSION_COLUMNS: &str = "token_hash, id, staff_id, created_at, expires_at";

fn staff(row: &PgRow) -> StoreResult<StaffRecord> {
    Ok(StaffRecord {
        id: StaffId::from_uuid(uuid(row, "id")?),
        username: named(row, "username", Username::parse)?,
        password_hash: get(row, "password_hash")?,
        totp: SealedTotp {
            kek_version: u32::try_from(get::<i64>(row, "totp_kek_version")?)
                .map_err(|_| corrupt("totp_kek_version"))?,
            bytes: get(row, "totp_sealed")?,
        },
        role: named(row, "role", StaffRole::parse)?,
        active: get(row, "active")?,
        created_at: millis(row, "created_at")?,
    })
}

fn session(row: &PgRow) -> StoreResult<StaffSessionRecord> {
    Ok(StaffSessionRecord {
        id: SessionId::from_uuid(uuid(row, "id")?),
        staff_id: StaffId::from_uuid(uuid(row, "staff_id")?),
        token_hash: TokenHash(hash32(row, "token_hash")?),
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
    })
}

#[async_trait]
impl StaffStore for PgStore {
    async fn create_staff(&self, s: StaffRecord) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            AssertSqlSafe(format!(
                "INSERT INTO staff ({STAFF_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )),
            move |q| {
                q.bind(*s.id.as_uuid())
                    .bind(s.username.as_str().to_owned())
                    .bind(s.password_hash)
                    .bind(i64::from(s.totp.kek_version))
                    .bind(s.totp.bytes)
                    .bind(s.role.as_str())
                    .bind(s.active)
                    .bind(s.created_at.as_millis())
            },
        )
        .await
        .map(drop)
    }

    async fn staff_by_name(&self, name: &Username) -> StoreResult<Option<StaffRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {STAFF_COLUMNS} FROM staff WHERE username = $1"
            )))
            .bind(name.as_str()),
            staff,
        )
        .await
    }

    async fn staff_by_id(&self, id: StaffId) -> StoreResult<Option<StaffRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"
            )))
            .bind(id.as_uuid()),
            staff,
        )
        .await
    }

    async fn all_staff(&self) -> StoreResult<Vec<StaffRecord>> {
        self.list(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {STAFF_COLUMNS} FROM staff ORDER BY created_at, id"
            ))),
            staff,
        )
        .await
    }

    async fn update_staff(&self, id: StaffId, role: StaffRole, active: bool) -> StoreResult<bool> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let n = sqlx::query("UPDATE staff SET role = $2, active = $3 WHERE id = $1")
                        .bind(id.as_uuid())
                        .bind(role.as_str())
                        .bind(active)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                    if !active {
                        sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
                            .bind(id.as_uuid())
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                    }
                    Ok(n == 1)
                })
            })
            .await
    }

    async fn use_totp_step(&self, id: StaffId, step: u64) -> StoreResult<bool> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.statement(
            Lock::Own,
            "UPDATE staff SET last_totp_step = $2 \
             WHERE id = $1 AND (last_totp_step IS NULL OR last_totp_step < $2)",
            move |q| q.bind(*id.as_uuid()).bind(step),
        )
        .await
        .map(|n| n == 1)
    }

    async fn create_staff_session(&self, s: StaffSessionRecord) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            AssertSqlSafe(format!(
                "INSERT INTO staff_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            )),
            move |q| {
                q.bind(s.token_hash.0.to_vec())
                    .bind(*s.id.as_uuid())
                    .bind(*s.staff_id.as_uuid())
                    .bind(s.created_at.as_millis())
                    .bind(s.expires_at.as_millis())
            },
        )
        .await
        .map(drop)
    }

    async fn staff_session_by_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StaffSessionRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS} FROM staff_sessions WHERE token_hash = $1"
            )))
            .bind(&hash.0[..]),
            session,
        )
        .await
    }

    async fn delete_staff_session(&self, id: SessionId) -> StoreResult<bool> {
        self.statement(
            Lock::Own,
            "DELETE FROM staff_sessions WHERE id = $1",
            move |q| q.bind(*id.as_uuid()),
        )
        .await
        .map(|n| n == 1)
    }
}
