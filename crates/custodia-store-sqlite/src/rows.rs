//! Decoding rows into the seam's records. A value that does not decode is `Corrupt`.

use custodia_core::{
    BirthDate, ClientMsgId, ConversationId, ConversationKind, Epoch, MemberRole, MessageId,
    SessionId, Timestamp, UserId, Username,
};
use custodia_store::{
    ConversationRecord, ConversationSummary, MemberRecord, SealedBody, SessionRecord, StoreError,
    StoreResult, StoredMessage, TokenHash, UserRecord, WrappedDek,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::map_err;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn uuid(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    row.try_get::<Uuid, _>(col).map_err(map_err)
}

fn millis(row: &SqliteRow, col: &str) -> StoreResult<Timestamp> {
    row.try_get::<i64, _>(col)
        .map(Timestamp::from_millis)
        .map_err(map_err)
}

fn unsigned(row: &SqliteRow, col: &str) -> StoreResult<u64> {
    let v: i64 = row.try_get(col).map_err(map_err)?;
    u64::try_from(v).map_err(|_| corrupt(col))
}

pub(crate) fn user(row: &SqliteRow) -> StoreResult<UserRecord> {
    let name: String = row.try_get("username").map_err(map_err)?;
    let dob: String = row.try_get("birth_date").map_err(map_err)?;
    let far_future = time::Date::MAX;
    Ok(UserRecord {
        id: UserId::from_uuid(uuid(row, "id")?),
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        password_hash: row.try_get("password_hash").map_err(map_err)?,
        birth_date: BirthDate::parse(&dob, far_future).map_err(|_| corrupt("birth_date"))?,
        created_at: millis(row, "created_at")?,
    })
}

pub(crate) fn session(row: &SqliteRow) -> StoreResult<SessionRecord> {
    let hash: Vec<u8> = row.try_get("token_hash").map_err(map_err)?;
    Ok(SessionRecord {
        id: SessionId::from_uuid(uuid(row, "id")?),
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        token_hash: TokenHash(hash.try_into().map_err(|_| corrupt("token_hash"))?),
        device: row.try_get("device").map_err(map_err)?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
    })
}

pub(crate) fn conversation(row: &SqliteRow) -> StoreResult<ConversationRecord> {
    let kind: String = row.try_get("kind").map_err(map_err)?;
    Ok(ConversationRecord {
        id: ConversationId::from_uuid(uuid(row, "id")?),
        kind: ConversationKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        title: row.try_get("title").map_err(map_err)?,
        created_by: UserId::from_uuid(uuid(row, "created_by")?),
        created_at: millis(row, "created_at")?,
        last_seq: unsigned(row, "last_seq")?,
    })
}

pub(crate) fn member(row: &SqliteRow) -> StoreResult<MemberRecord> {
    let name: String = row.try_get("username").map_err(map_err)?;
    let role: String = row.try_get("role").map_err(map_err)?;
    Ok(MemberRecord {
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        role: MemberRole::parse(&role).ok_or_else(|| corrupt("role"))?,
        read_seq: unsigned(row, "read_seq")?,
        joined_at: millis(row, "joined_at")?,
    })
}

/// Decodes a message whose columns carry `prefix` (empty for plain message rows).
fn message_with(row: &SqliteRow, prefix: &str) -> StoreResult<StoredMessage> {
    let col = |c: &str| format!("{prefix}{c}");
    let client_id: String = row.try_get(col("client_id").as_str()).map_err(map_err)?;
    let epoch: String = row.try_get(col("epoch").as_str()).map_err(map_err)?;
    let sealed: Option<Vec<u8>> = row.try_get(col("sealed").as_str()).map_err(map_err)?;
    let deleted: Option<i64> = row.try_get(col("deleted_at").as_str()).map_err(map_err)?;
    Ok(StoredMessage {
        id: MessageId::from_uuid(uuid(row, &col("id"))?),
        conversation_id: ConversationId::from_uuid(uuid(
            row,
            if prefix.is_empty() {
                "conversation_id"
            } else {
                "id"
            },
        )?),
        seq: unsigned(row, &col("seq"))?,
        sender_id: UserId::from_uuid(uuid(row, &col("sender_id"))?),
        client_id: ClientMsgId::parse(&client_id).map_err(|_| corrupt("client_id"))?,
        sent_at: millis(row, &col("sent_at"))?,
        epoch: Epoch::from_label(epoch),
        sealed: sealed.map(SealedBody),
        deleted_at: deleted.map(Timestamp::from_millis),
    })
}

pub(crate) fn message(row: &SqliteRow) -> StoreResult<StoredMessage> {
    message_with(row, "")
}

pub(crate) fn summary(row: &SqliteRow) -> StoreResult<ConversationSummary> {
    let has_last: Option<i64> = row.try_get("lm_seq").map_err(map_err)?;
    let count: i64 = row.try_get("member_count").map_err(map_err)?;
    Ok(ConversationSummary {
        conversation: conversation(row)?,
        read_seq: unsigned(row, "read_seq")?,
        last_message: has_last.map(|_| message_with(row, "lm_")).transpose()?,
        member_count: u32::try_from(count).map_err(|_| corrupt("member_count"))?,
    })
}

pub(crate) fn wrapped_dek(row: &SqliteRow) -> StoreResult<WrappedDek> {
    let version: i64 = row.try_get("kek_version").map_err(map_err)?;
    Ok(WrappedDek {
        kek_version: u32::try_from(version).map_err(|_| corrupt("kek_version"))?,
        bytes: row.try_get("wrapped").map_err(map_err)?,
    })
}
