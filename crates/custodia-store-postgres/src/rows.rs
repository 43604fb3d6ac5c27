//! Decoding rows into the seam's records. A value that does not decode is `Corrupt`.

use custodia_core::{
    BirthDate, ClientMsgId, ConversationId, ConversationKind, Epoch, MemberRole, MessageId,
    SessionId, Timestamp, UserId, Username, ValidationError,
};
use custodia_store::{
    ConversationRecord, ConversationSummary, Franking, MemberRecord, SealedBody, SessionRecord,
    StoreError, StoreResult, StoredMessage, TokenHash, UserRecord, WrappedDek,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// A column that does not hold what the schema promises.
pub(crate) fn corrupt(col: &str) -> StoreError {
    StoreError::Corrupt(format!("undecodable value in column {col}"))
}

/// A column of any type sqlx decodes.
pub(crate) fn get<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col).map_err(|_| corrupt(col))
}

pub(crate) fn millis(row: &PgRow, col: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, col).map(Timestamp::from_millis)
}

pub(crate) fn opt_millis(row: &PgRow, col: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, col)?.map(Timestamp::from_millis))
}

pub(crate) fn unsigned(row: &PgRow, col: &str) -> StoreResult<u64> {
    u64::try_from(get::<i64>(row, col)?).map_err(|_| corrupt(col))
}

pub(crate) fn uuid(row: &PgRow, col: &str) -> StoreResult<Uuid> {
    get(row, col)
}

pub(crate) fn hash32(row: &PgRow, col: &str) -> StoreResult<[u8; 32]> {
    get::<Vec<u8>>(row, col)?
        .try_into()
        .map_err(|_| corrupt(col))
}

/// A text column parsed by one of the core vocabularies.
pub(crate) fn named<T>(
    row: &PgRow,
    col: &str,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> StoreResult<T> {
    parse(&get::<String>(row, col)?).map_err(|_| corrupt(col))
}

/// A sequence number or count as stored (bigint).
pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn user(row: &PgRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: UserId::from_uuid(uuid(row, "id")?),
        username: named(row, "username", Username::parse)?,
        password_hash: get(row, "password_hash")?,
        birth_date: BirthDate::parse(&get::<String>(row, "birth_date")?, time::Date::MAX)
            .map_err(|_| corrupt("birth_date"))?,
        created_at: millis(row, "created_at")?,
        closed_at: get::<Option<i64>>(row, "closed_at")?.map(custodia_core::Timestamp::from_millis),
    })
}

pub(crate) fn session(row: &PgRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: SessionId::from_uuid(uuid(row, "id")?),
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        token_hash: TokenHash(hash32(row, "token_hash")?),
        device: get(row, "device")?,
        created_at: millis(row, "created_at")?,
        expires_at: millis(row, "expires_at")?,
    })
}

pub(crate) fn conversation(row: &PgRow) -> StoreResult<ConversationRecord> {
    Ok(ConversationRecord {
        id: ConversationId::from_uuid(uuid(row, "id")?),
        kind: ConversationKind::parse(&get::<String>(row, "kind")?)
            .ok_or_else(|| corrupt("kind"))?,
        title: get(row, "title")?,
        created_by: UserId::from_uuid(uuid(row, "created_by")?),
        created_at: millis(row, "created_at")?,
        last_seq: unsigned(row, "last_seq")?,
    })
}

pub(crate) fn member(row: &PgRow) -> StoreResult<MemberRecord> {
    Ok(MemberRecord {
        user_id: UserId::from_uuid(uuid(row, "user_id")?),
        username: named(row, "username", Username::parse)?,
        role: MemberRole::parse(&get::<String>(row, "role")?).ok_or_else(|| corrupt("role"))?,
        read_seq: unsigned(row, "read_seq")?,
        joined_at: millis(row, "joined_at")?,
    })
}

/// Decodes a message whose columns carry `prefix` (empty for plain message rows; `lm_`
/// for the newest message joined onto a conversation).
fn message_with(row: &PgRow, prefix: &str, conversation_col: &str) -> StoreResult<StoredMessage> {
    let col = |c: &str| format!("{prefix}{c}");
    let commitment: Option<Vec<u8>> = get(row, &col("commitment"))?;
    let tag: Option<Vec<u8>> = get(row, &col("franking_tag"))?;
    let franking = match (commitment, tag) {
        (Some(c), Some(tag)) => Some(Franking {
            commitment: c.try_into().map_err(|_| corrupt("commitment"))?,
            tag,
        }),
        _ => None,
    };
    Ok(StoredMessage {
        id: MessageId::from_uuid(uuid(row, &col("id"))?),
        conversation_id: ConversationId::from_uuid(uuid(row, conversation_col)?),
        seq: unsigned(row, &col("seq"))?,
        sender_id: UserId::from_uuid(uuid(row, &col("sender_id"))?),
        client_id: named(row, &col("client_id"), ClientMsgId::parse)?,
        sent_at: millis(row, &col("sent_at"))?,
        epoch: Epoch::from_label(get(row, &col("epoch"))?),
        sealed: get::<Option<Vec<u8>>>(row, &col("sealed"))?.map(SealedBody),
        deleted_at: opt_millis(row, &col("deleted_at"))?,
        franking,
    })
}

pub(crate) fn message(row: &PgRow) -> StoreResult<StoredMessage> {
    message_with(row, "", "conversation_id")
}

pub(crate) fn summary(row: &PgRow) -> StoreResult<ConversationSummary> {
    let has_last: Option<i64> = get(row, "lm_seq")?;
    Ok(ConversationSummary {
        conversation: conversation(row)?,
        read_seq: unsigned(row, "read_seq")?,
        last_message: has_last
            .map(|_| message_with(row, "lm_", "id"))
            .transpose()?,
        member_count: u32::try_from(get::<i64>(row, "member_count")?)
            .map_err(|_| corrupt("member_count"))?,
    })
}

pub(crate) fn wrapped_dek(row: &PgRow) -> StoreResult<WrappedDek> {
    Ok(WrappedDek {
        kek_version: u32::try_from(get::<i64>(row, "kek_version")?)
            .map_err(|_| corrupt("kek_version"))?,
        bytes: get(row, "wrapped")?,
    })
}
