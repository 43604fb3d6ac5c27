//! What is sealed directly under a KEK, found and rewrapped by kind (the SQL is shared
//! with SQLite: `custodia_store::rows::kek_columns`), and the KEK steps.

use custodia_store::rows::{self, KekKey};
use custodia_store::{
    KekItem, KekSealed, KekSealedKind, KekStep, KekStepKind, KekUsage, StoreResult, WrappedDek,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;

use crate::rows::get;
use crate::writer::Lock;
use crate::{PgQuery, PgStore, all};

/// Binds the value that stands for KEK `version` in a kind's version comparison.
fn bind_version(kind: KekSealedKind, version: u32, q: PgQuery<'_>) -> PgQuery<'_> {
    match rows::kek_columns(kind).version {
        Some(_) => q.bind(i64::from(version)),
        None => q.bind(rows::kek_prefix(version).to_vec()),
    }
}

fn bind_keys<'q>(item: &KekItem, q: PgQuery<'q>) -> PgQuery<'q> {
    let (first, second) = rows::kek_item_keys(item);
    let q = q.bind(first);
    match second {
        Some(KekKey::Text(t)) => q.bind(t),
        Some(KekKey::Int(i)) => q.bind(i),
        None => q,
    }
}

/// An integer key column, whether stored as `integer` or `bigint`.
fn int_key(row: &PgRow) -> StoreResult<i64> {
    get::<i64>(row, "k1").or_else(|_| get::<i32>(row, "k1").map(i64::from))
}

fn sealed_row(kind: KekSealedKind, row: &PgRow) -> StoreResult<KekSealed> {
    let columns = rows::kek_columns(kind);
    let (text, int) = match columns.keys.len() {
        1 => (None, None),
        _ if rows::kek_second_key_is_text(kind) => (Some(get(row, "k1")?), None),
        _ => (None, Some(int_key(row)?)),
    };
    let version = match columns.version {
        Some(_) => Some(get::<i64>(row, "v")?),
        None => None,
    };
    rows::kek_sealed(kind, get(row, "k0")?, text, int, get(row, "b")?, version)
}

impl PgStore {
    pub(crate) async fn pg_kek_usage(&self) -> StoreResult<Vec<KekUsage>> {
        let mut out = Vec::new();
        for kind in KekSealedKind::ALL {
            let columns = rows::kek_columns(kind);
            let found = self
                .list(sqlx::query(AssertSqlSafe(columns.usage_sql())), |row| {
                    let version = match columns.version {
                        Some(_) => rows::kek_usage_version(Some(get(row, "v")?), None)?,
                        None => rows::kek_usage_version(None, Some(get(row, "v")?))?,
                    };
                    Ok(KekUsage {
                        kind,
                        version,
                        count: rows::unsigned(get(row, "n")?, "count")?,
                    })
                })
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    pub(crate) async fn pg_kek_sealed_not_under(
        &self,
        kind: KekSealedKind,
        current: u32,
        after: Option<KekItem>,
        limit: u32,
    ) -> StoreResult<Vec<KekSealed>> {
        let sql = rows::kek_columns(kind).not_under_sql(after.is_some(), limit);
        let mut q = bind_version(kind, current, sqlx::query(AssertSqlSafe(sql)));
        if let Some(a) = &after {
            q = bind_keys(a, q);
        }
        self.list(q, |row| sealed_row(kind, row)).await
    }

    pub(crate) async fn pg_replace_kek_sealed(
        &self,
        old: KekSealed,
        new: WrappedDek,
    ) -> StoreResult<bool> {
        let columns = rows::kek_columns(old.item.kind());
        let changed = self
            .statement(Lock::Own, AssertSqlSafe(columns.replace_sql()), move |q| {
                let mut q = q.bind(new.bytes);
                if columns.version.is_some() {
                    q = q.bind(i64::from(new.kek_version));
                }
                bind_keys(&old.item, q).bind(old.sealed.bytes)
            })
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn pg_add_kek_step(&self, step: KekStep) -> StoreResult<bool> {
        let changed = self
            .statement(Lock::Own, rows::ADD_KEK_STEP, move |q| {
                q.bind(step.kind.as_str())
                    .bind(i64::from(step.version))
                    .bind(step.at.as_millis())
                    .bind(step.detail)
            })
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn pg_kek_steps(&self) -> StoreResult<Vec<KekStep>> {
        let found = sqlx::query(rows::KEK_STEPS)
            .fetch_all(&self.pool)
            .await
            .map_err(crate::map_err)?;
        all(found, |row| {
            rows::kek_step(
                get(row, "kind")?,
                get(row, "version")?,
                get(row, "at")?,
                get(row, "detail")?,
                get(row, "log_index")?,
            )
        })
    }

    pub(crate) async fn pg_kek_step_logged(
        &self,
        kind: KekStepKind,
        version: u32,
        index: u64,
    ) -> StoreResult<()> {
        self.statement(Lock::Own, rows::KEK_STEP_LOGGED, move |q| {
            q.bind(rows::signed(index))
                .bind(kind.as_str())
                .bind(i64::from(version))
        })
        .await
        .map(drop)
    }
}
