//! Decoding rows into the seam's records. A value that does not decode is `Corrupt`.

use custodia_core::{
    BirthDate, ClientMsgId, ConversationId, ConversationKind, Epoch, MemberRole, MessageId,
    SessionId, Timestamp, UserId, Username,
};
use custodia_store::{
    ConversationRecord, ConversationSummary, Franking, MemberRecord, SealedBody, SessionRecord,
    StoredMessage, TokenHash, UserRecord, WrappedDek,
};
use rusqlite::Row;
use uuid::Uuid;

/// A decoding failure, reported to rusqlite so it surfaces as `StoreError::Corrupt`.
fn corrupt(col: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(format!("undecodable value in column {col}"))
}

fn millis(row: &Row<'_>, col: &str) -> rusqlite::Result<Timestamp> {
    row.get::<_, i64>(col).map(Timestamp::from_millis)
}

fn unsigned(row: &Row<'_>, col: &str) -> rusqlite::Result<u64> {
    u64::try_from(row.get::<_, i64>(col)?).map_err(|_| corrupt(col))
}

fn id(row: &Row<'_>, col: &str) -> rusqlite::Result<Uuid> {
    row.get::<_, Uuid>(col)
}

pub(crate) fn user(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let name: String = row.get("username")?;
    let dob: String = row.get("birth_date")?;
    Ok(UserRecord {
        id: UserId::from_uuid(id(row, "id")?),
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        password_hash: row.get("password_hash")?,
        birth_date: BirthDate::parse(&dob, time::Date::MAX).map_err(|_| corrupt("birth_date"))?,
        created_at: millis(row, "created_at")?,
        closed_at: row
            .get::<_, Option<i64>>("closed_at")?
            .map(custodia_core::Timestamp::from_millis),
    })
}

pub(crate) fn session(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    let hash: Vec<u8> = row.get("token_hash")?;
    Ok(SessionRecord {
        id: SessionId::from_uuid(id(row, "id")?),
        user_id: UserId::from_uuid(id(row, "user_id")?),
        token_hash: TokenHash(hash.try_into().map_err(|_| corrupt("token_hash"))?),
        device: row.get("device")?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
    })
}

pub(crate) fn conversation(row: &Row<'_>) -> rusqlite::Result<ConversationRecord> {
    let kind: String = row.get("kind")?;
    Ok(ConversationRecord {
        id: ConversationId::from_uuid(id(row, "id")?),
        kind: ConversationKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        title: row.get("title")?,
        created_by: UserId::from_uuid(id(row, "created_by")?),
        created_at: millis(row, "created_at")?,
        last_seq: unsigned(row, "last_seq")?,
    })
}

pub(crate) fn member(row: &Row<'_>) -> rusqlite::Result<MemberRecord> {
    let name: String = row.get("username")?;
    let role: String = row.get("role")?;
    Ok(MemberRecord {
        user_id: UserId::from_uuid(id(row, "user_id")?),
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        role: MemberRole::parse(&role).ok_or_else(|| corrupt("role"))?,
        read_seq: unsigned(row, "read_seq")?,
        joined_at: millis(row, "joined_at")?,
    })
}

/// Decodes a message whose columns carry `prefix` (empty for plain message rows; `lm_`
/// for the newest message joined onto a conversation).
fn message_with(
    row: &Row<'_>,
    prefix: &str,
    conversation_col: &str,
) -> rusqlite::Result<StoredMessage> {
    let col = |c: &str| format!("{prefix}{c}");
    let client_id: String = row.get(col("client_id").as_str())?;
    let sealed: Option<Vec<u8>> = row.get(col("sealed").as_str())?;
    let deleted: Option<i64> = row.get(col("deleted_at").as_str())?;
    let commitment: Option<Vec<u8>> = row.get(col("commitment").as_str())?;
    let tag: Option<Vec<u8>> = row.get(col("franking_tag").as_str())?;
    let franking = match (commitment, tag) {
        (Some(c), Some(tag)) => Some(Franking {
            commitment: c.try_into().map_err(|_| corrupt("commitment"))?,
            tag,
        }),
        _ => None,
    };
    Ok(StoredMessage {
        id: MessageId::from_uuid(id(row, &col("id"))?),
        conversation_id: ConversationId::from_uuid(id(row, conversation_col)?),
        seq: unsigned(row, &col("seq"))?,
        sender_id: UserId::from_uuid(id(row, &col("sender_id"))?),
        client_id: ClientMsgId::parse(&client_id).map_err(|_| corrupt("client_id"))?,
        sent_at: millis(row, &col("sent_at"))?,
        epoch: Epoch::from_label(row.get(col("epoch").as_str())?),
        sealed: sealed.map(SealedBody),
        deleted_at: deleted.map(Timestamp::from_millis),
        franking,
    })
}

pub(crate) fn message(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    message_with(row, "", "conversation_id")
}

pub(crate) fn summary(row: &Row<'_>) -> rusqlite::Result<ConversationSummary> {
    let has_last: Option<i64> = row.get("lm_seq")?;
    let count: i64 = row.get("member_count")?;
    Ok(ConversationSummary {
        conversation: conversation(row)?,
        read_seq: unsigned(row, "read_seq")?,
        last_message: has_last
            .map(|_| message_with(row, "lm_", "id"))
            .transpose()?,
        member_count: u32::try_from(count).map_err(|_| corrupt("member_count"))?,
    })
}

pub(crate) fn wrapped_dek(row: &Row<'_>) -> rusqlite::Result<WrappedDek> {
    let version: i64 = row.get("kek_version")?;
    Ok(WrappedDek {
        kek_version: u32::try_from(version).map_err(|_| corrupt("kek_version"))?,
        bytes: row.get("wrapped")?,
    })
}
