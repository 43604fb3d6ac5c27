//! Staff accounts and sessions on PostgreSQL.

use async_trait::async_trait;
use custodia_core::{
    SessionId, StaffChangeId, StaffChangeKind, StaffChangeStatus, StaffId, StaffRole, Timestamp,
    Username,
};
use custodia_store::{
    SealedTotp, StaffChangeRecord, StaffEffect, StaffEnrolment, StaffRecord, StaffSessionRecord,
    StaffStore, StoreError, StoreResult, TokenHash, sponsors_from_text, sponsors_to_text,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnection, PgRow};

use crate::rows::{corrupt, get, hash32, millis, named, opt_millis, uuid};
use crate::writer::Lock;
use crate::{PgStore, map_err};

const STAFF_COLUMNS: &str = "id, username, password_hash, totp_kek_version, totp_sealed, role, \
     active, created_at, role_since, sponsors, enrol_hash, enrol_until";
const CHANGE_COLUMNS: &str = "id, kind, staff_id, username, role, active, proposed_by, \
     proposed_at, status, decided_by, decided_at";
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
        role_since: opt_millis(row, "role_since")?.unwrap_or(millis(row, "created_at")?),
        sponsors: sponsors_from_text(&get::<String>(row, "sponsors")?)
            .ok_or_else(|| corrupt("sponsors"))?,
        enrolment: match get::<Option<Vec<u8>>>(row, "enrol_hash")? {
            None => None,
            Some(hash) => Some(StaffEnrolment {
                code_hash: TokenHash(hash.try_into().map_err(|_| corrupt("enrol_hash"))?),
                expires_at: millis(row, "enrol_until")?,
            }),
        },
    })
}

fn change(row: &PgRow) -> StoreResult<StaffChangeRecord> {
    Ok(StaffChangeRecord {
        id: StaffChangeId::from_uuid(uuid(row, "id")?),
        kind: named(row, "kind", StaffChangeKind::parse)?,
        staff_id: StaffId::from_uuid(uuid(row, "staff_id")?),
        username: named(row, "username", Username::parse)?,
        role: named(row, "role", StaffRole::parse)?,
        active: get(row, "active")?,
        proposed_by: StaffId::from_uuid(uuid(row, "proposed_by")?),
        proposed_at: millis(row, "proposed_at")?,
        status: named(row, "status", StaffChangeStatus::parse)?,
        decided_by: get::<Option<uuid::Uuid>>(row, "decided_by")?.map(StaffId::from_uuid),
        decided_at: opt_millis(row, "decided_at")?,
    })
}

async fn insert_staff(c: &mut PgConnection, s: StaffRecord) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO staff ({STAFF_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )))
    .bind(*s.id.as_uuid())
    .bind(s.username.as_str().to_owned())
    .bind(s.password_hash)
    .bind(i64::from(s.totp.kek_version))
    .bind(s.totp.bytes)
    .bind(s.role.as_str())
    .bind(s.active)
    .bind(s.created_at.as_millis())
    .bind(s.role_since.as_millis())
    .bind(sponsors_to_text(&s.sponsors))
    .bind(s.enrolment.as_ref().map(|e| e.code_hash.0.to_vec()))
    .bind(s.enrolment.as_ref().map(|e| e.expires_at.as_millis()))
    .execute(c)
    .await
    .map(drop)
    .map_err(map_err)
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
        self.writer
            .write(Lock::Own, move |c| Box::pin(insert_staff(c, s)))
            .await
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

    async fn set_staff_credentials(
        &self,
        id: StaffId,
        enrolment: Option<TokenHash>,
        password_hash: String,
        totp: SealedTotp,
    ) -> StoreResult<bool> {
        // With no code, only an enrolled account; with one, only the account whose pending
        // code it is (which it then ends). A new TOTP secret starts with no step used.
        let sql = "UPDATE staff SET password_hash = $2, totp_kek_version = $3, totp_sealed = $4, \
             enrol_hash = NULL, enrol_until = NULL, \
             last_totp_step = CASE WHEN totp_sealed = $4 THEN last_totp_step ELSE NULL END \
             WHERE id = $1 AND enrol_hash IS NOT DISTINCT FROM $5";
        self.statement(Lock::Own, sql, move |q| {
            q.bind(*id.as_uuid())
                .bind(password_hash)
                .bind(i64::from(totp.kek_version))
                .bind(totp.bytes)
                .bind(enrolment.map(|h| h.0.to_vec()))
        })
        .await
        .map(|n| n == 1)
    }

    async fn create_staff_change(&self, ch: StaffChangeRecord) -> StoreResult<()> {
        self.statement(
            Lock::Own,
            AssertSqlSafe(format!(
                "INSERT INTO staff_changes ({CHANGE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )),
            move |q| {
                q.bind(*ch.id.as_uuid())
                    .bind(ch.kind.as_str())
                    .bind(*ch.staff_id.as_uuid())
                    .bind(ch.username.as_str().to_owned())
                    .bind(ch.role.as_str())
                    .bind(ch.active)
                    .bind(*ch.proposed_by.as_uuid())
                    .bind(ch.proposed_at.as_millis())
                    .bind(ch.status.as_str())
                    .bind(ch.decided_by.map(|d| *d.as_uuid()))
                    .bind(ch.decided_at.map(|t| t.as_millis()))
            },
        )
        .await
        .map(drop)
    }

    async fn staff_change(&self, id: StaffChangeId) -> StoreResult<Option<StaffChangeRecord>> {
        self.find(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {CHANGE_COLUMNS} FROM staff_changes WHERE id = $1"
            )))
            .bind(id.as_uuid()),
            change,
        )
        .await
    }

    async fn staff_changes(&self) -> StoreResult<Vec<StaffChangeRecord>> {
        self.list(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {CHANGE_COLUMNS} FROM staff_changes ORDER BY proposed_at DESC, id"
            ))),
            change,
        )
        .await
    }

    async fn decide_staff_change(
        &self,
        id: StaffChangeId,
        status: StaffChangeStatus,
        decided_by: Option<StaffId>,
        at: Timestamp,
        effect: Option<StaffEffect>,
    ) -> StoreResult<bool> {
        self.writer
            .write(Lock::Own, move |c| {
                Box::pin(async move {
                    let n = sqlx::query(
                        "UPDATE staff_changes SET status = $2, decided_by = $3, decided_at = $4 \
                         WHERE id = $1 AND status = 'pending'",
                    )
                    .bind(id.as_uuid())
                    .bind(status.as_str())
                    .bind(decided_by.map(|d| *d.as_uuid()))
                    .bind(at.as_millis())
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                    if n != 1 {
                        return Ok(false);
                    }
                    match effect {
                        None => {}
                        Some(StaffEffect::Create(record)) => insert_staff(&mut *c, record).await?,
                        Some(StaffEffect::Update {
                            id,
                            role,
                            active,
                            sponsors,
                            role_since,
                        }) => {
                            let n = sqlx::query(
                                "UPDATE staff SET role = $2, active = $3, sponsors = $4, \
                                 role_since = $5 WHERE id = $1",
                            )
                            .bind(id.as_uuid())
                            .bind(role.as_str())
                            .bind(active)
                            .bind(sponsors_to_text(&sponsors))
                            .bind(role_since.as_millis())
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?
                            .rows_affected();
                            if n != 1 {
                                // The write's rollback undoes the decision with it.
                                return Err(StoreError::Conflict);
                            }
                            if !active {
                                sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
                                    .bind(id.as_uuid())
                                    .execute(&mut *c)
                                    .await
                                    .map_err(map_err)?;
                            }
                        }
                    }
                    Ok(true)
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

    async fn unuse_totp_step(&self, id: StaffId, step: u64) -> StoreResult<bool> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.statement(
            Lock::Own,
            "UPDATE staff SET last_totp_step = $2 - 1 WHERE id = $1 AND last_totp_step = $2",
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
