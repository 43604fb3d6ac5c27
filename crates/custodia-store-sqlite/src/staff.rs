//! Staff accounts and sessions on SQLite.

use async_trait::async_trait;
use custodia_core::{
    SessionId, StaffChangeId, StaffChangeKind, StaffChangeStatus, StaffId, StaffRole, Timestamp,
    Username,
};
use custodia_store::{
    SealedTotp, StaffChangeRecord, StaffEffect, StaffEnrolment, StaffRecord, StaffSessionRecord,
    StaffStore, StoreError, StoreResult, TokenHash, sponsors_from_text, sponsors_to_text,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{SqliteStore, map_err};

const STAFF_COLUMNS: &str = "id, username, password_hash, totp_kek_version, totp_sealed, role, \
     active, created_at, role_since, sponsors, enrol_hash, enrol_until";
const CHANGE_COLUMNS: &str = "id, kind, staff_id, username, role, active, proposed_by, \
     proposed_at, status, decided_by, decided_at";
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
        role_since: Timestamp::from_millis(
            row.get::<_, Option<i64>>("role_since")?
                .unwrap_or(row.get("created_at")?),
        ),
        sponsors: sponsors_from_text(&row.get::<_, String>("sponsors")?)
            .ok_or_else(|| corrupt("sponsors"))?,
        enrolment: match row.get::<_, Option<Vec<u8>>>("enrol_hash")? {
            None => None,
            Some(hash) => Some(StaffEnrolment {
                code_hash: TokenHash(hash.try_into().map_err(|_| corrupt("enrol_hash"))?),
                expires_at: Timestamp::from_millis(row.get("enrol_until")?),
            }),
        },
    })
}

fn change(row: &Row<'_>) -> rusqlite::Result<StaffChangeRecord> {
    let name: String = row.get("username")?;
    let kind: String = row.get("kind")?;
    let role: String = row.get("role")?;
    let status: String = row.get("status")?;
    Ok(StaffChangeRecord {
        id: StaffChangeId::from_uuid(row.get("id")?),
        kind: StaffChangeKind::parse(&kind).map_err(|_| corrupt("kind"))?,
        staff_id: StaffId::from_uuid(row.get("staff_id")?),
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        role: StaffRole::parse(&role).map_err(|_| corrupt("role"))?,
        active: row.get("active")?,
        proposed_by: StaffId::from_uuid(row.get("proposed_by")?),
        proposed_at: Timestamp::from_millis(row.get("proposed_at")?),
        status: StaffChangeStatus::parse(&status).map_err(|_| corrupt("status"))?,
        decided_by: row
            .get::<_, Option<uuid::Uuid>>("decided_by")?
            .map(StaffId::from_uuid),
        decided_at: row
            .get::<_, Option<i64>>("decided_at")?
            .map(Timestamp::from_millis),
    })
}

fn insert_staff(c: &Connection, s: &StaffRecord) -> StoreResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO staff ({STAFF_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
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
            s.created_at.as_millis(),
            s.role_since.as_millis(),
            sponsors_to_text(&s.sponsors),
            s.enrolment.as_ref().map(|e| e.code_hash.0.to_vec()),
            s.enrolment.as_ref().map(|e| e.expires_at.as_millis()),
        ])
    })
    .map(drop)
    .map_err(map_err)
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
        self.writer.write(move |c| insert_staff(c, &s)).await
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

    async fn set_staff_credentials(
        &self,
        id: StaffId,
        enrolment: Option<TokenHash>,
        password_hash: String,
        totp: SealedTotp,
    ) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                // `IS` matches NULL to NULL: with no code, only an enrolled account; with
                // one, only the account whose pending code it is (which it then ends). A new
                // TOTP secret starts with no step used.
                c.execute(
                    "UPDATE staff SET password_hash = ?2, totp_kek_version = ?3, totp_sealed = ?4, \
                     enrol_hash = NULL, enrol_until = NULL, \
                     last_totp_step = CASE WHEN totp_sealed = ?4 THEN last_totp_step ELSE NULL END \
                     WHERE id = ?1 AND enrol_hash IS ?5",
                    params![
                        id.as_uuid(),
                        password_hash,
                        totp.kek_version,
                        totp.bytes,
                        enrolment.map(|h| h.0.to_vec())
                    ],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    async fn create_staff_change(&self, ch: StaffChangeRecord) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO staff_changes ({CHANGE_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        ch.id.as_uuid(),
                        ch.kind.as_str(),
                        ch.staff_id.as_uuid(),
                        ch.username.as_str(),
                        ch.role.as_str(),
                        ch.active,
                        ch.proposed_by.as_uuid(),
                        ch.proposed_at.as_millis(),
                        ch.status.as_str(),
                        ch.decided_by.map(|d| *d.as_uuid()),
                        ch.decided_at.map(|t| t.as_millis()),
                    ])
                })
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn staff_change(&self, id: StaffChangeId) -> StoreResult<Option<StaffChangeRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM staff_changes WHERE id = ?1"
            ))?
            .query_row([id.as_uuid()], change)
            .optional()
        })
        .await
    }

    async fn staff_changes(&self) -> StoreResult<Vec<StaffChangeRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM staff_changes ORDER BY proposed_at DESC, id"
            ))?
            .query_map([], change)?
            .collect()
        })
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
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE staff_changes SET status = ?2, decided_by = ?3, decided_at = ?4 \
                         WHERE id = ?1 AND status = 'pending'",
                        params![
                            id.as_uuid(),
                            status.as_str(),
                            decided_by.map(|d| *d.as_uuid()),
                            at.as_millis()
                        ],
                    )
                    .map_err(map_err)?;
                if n != 1 {
                    return Ok(false);
                }
                match effect {
                    None => {}
                    Some(StaffEffect::Create(record)) => insert_staff(c, &record)?,
                    Some(StaffEffect::Update {
                        id,
                        role,
                        active,
                        sponsors,
                        role_since,
                    }) => {
                        let n = c
                            .execute(
                                "UPDATE staff SET role = ?2, active = ?3, sponsors = ?4, \
                                 role_since = ?5 WHERE id = ?1",
                                params![
                                    id.as_uuid(),
                                    role.as_str(),
                                    active,
                                    sponsors_to_text(&sponsors),
                                    role_since.as_millis()
                                ],
                            )
                            .map_err(map_err)?;
                        if n != 1 {
                            // The savepoint's rollback undoes the decision with it.
                            return Err(StoreError::Conflict);
                        }
                        if !active {
                            c.execute(
                                "DELETE FROM staff_sessions WHERE staff_id = ?1",
                                [id.as_uuid()],
                            )
                            .map_err(map_err)?;
                        }
                    }
                }
                Ok(true)
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

    async fn unuse_totp_step(&self, id: StaffId, step: u64) -> StoreResult<bool> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE staff SET last_totp_step = ?2 - 1 WHERE id = ?1 AND last_totp_step = ?2",
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
