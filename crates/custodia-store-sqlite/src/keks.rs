//! What is sealed directly under a KEK, found and rewrapped by kind (the SQL is shared
//! with PostgreSQL: `custodia_store::rows::kek_columns`), and the KEK steps.

use custodia_store::rows::{self, KekKey};
use custodia_store::{
    KekItem, KekSealed, KekSealedKind, KekStep, KekStepKind, KekUsage, StoreResult, WrappedDek,
};
use rusqlite::types::Value;
use rusqlite::{Row, params, params_from_iter};

use crate::{SqliteStore, map_err};

/// The value that stands for KEK `version` in a kind's version comparison.
fn version_value(kind: KekSealedKind, version: u32) -> Value {
    match rows::kek_columns(kind).version {
        Some(_) => Value::Integer(i64::from(version)),
        None => Value::Blob(rows::kek_prefix(version).to_vec()),
    }
}

fn key_values(item: &KekItem) -> Vec<Value> {
    let (first, second) = rows::kek_item_keys(item);
    let mut out = vec![Value::Blob(first.as_bytes().to_vec())];
    match second {
        Some(KekKey::Text(t)) => out.push(Value::Text(t)),
        Some(KekKey::Int(i)) => out.push(Value::Integer(i)),
        None => {}
    }
    out
}

fn sealed_row(kind: KekSealedKind, row: &Row<'_>) -> rusqlite::Result<StoreResult<KekSealed>> {
    let columns = rows::kek_columns(kind);
    let first: uuid::Uuid = row.get("k0")?;
    let (text, int) = match columns.keys.len() {
        1 => (None, None),
        _ if rows::kek_second_key_is_text(kind) => (Some(row.get("k1")?), None),
        _ => (None, Some(row.get("k1")?)),
    };
    let version = match columns.version {
        Some(_) => Some(row.get("v")?),
        None => None,
    };
    Ok(rows::kek_sealed(
        kind,
        first,
        text,
        int,
        row.get("b")?,
        version,
    ))
}

impl SqliteStore {
    pub(crate) async fn sqlite_kek_usage(&self) -> StoreResult<Vec<KekUsage>> {
        self.read_with(|c| {
            let mut out = Vec::new();
            for kind in KekSealedKind::ALL {
                let columns = rows::kek_columns(kind);
                let mut stmt = c.prepare_cached(&columns.usage_sql()).map_err(map_err)?;
                let found = stmt
                    .query_map([], |row| {
                        let v = match columns.version {
                            Some(_) => (Some(row.get::<_, i64>("v")?), None),
                            None => (None, Some(row.get::<_, Vec<u8>>("v")?)),
                        };
                        Ok((v, row.get::<_, i64>("n")?))
                    })
                    .map_err(map_err)?;
                for r in found {
                    let ((int, prefix), n) = r.map_err(map_err)?;
                    out.push(KekUsage {
                        kind,
                        version: rows::kek_usage_version(int, prefix)?,
                        count: rows::unsigned(n, "count")?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn sqlite_kek_sealed_not_under(
        &self,
        kind: KekSealedKind,
        current: u32,
        after: Option<KekItem>,
        limit: u32,
    ) -> StoreResult<Vec<KekSealed>> {
        self.read_with(move |c| {
            let sql = rows::kek_columns(kind).not_under_sql(after.is_some(), limit);
            let mut values = vec![version_value(kind, current)];
            if let Some(a) = &after {
                values.extend(key_values(a));
            }
            let mut stmt = c.prepare_cached(&sql).map_err(map_err)?;
            let found = stmt
                .query_map(params_from_iter(values), |row| sealed_row(kind, row))
                .map_err(map_err)?;
            let mut out = Vec::new();
            for r in found {
                out.push(r.map_err(map_err)??);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn sqlite_replace_kek_sealed(
        &self,
        old: KekSealed,
        new: WrappedDek,
    ) -> StoreResult<bool> {
        let kind = old.item.kind();
        let columns = rows::kek_columns(kind);
        let mut values = vec![Value::Blob(new.bytes)];
        if columns.version.is_some() {
            values.push(Value::Integer(i64::from(new.kek_version)));
        }
        values.extend(key_values(&old.item));
        values.push(Value::Blob(old.sealed.bytes));
        self.writer
            .write(move |c| {
                c.execute(&columns.replace_sql(), params_from_iter(values))
                    .map(|n| n == 1)
                    .map_err(map_err)
            })
            .await
    }

    pub(crate) async fn sqlite_add_kek_step(&self, step: KekStep) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.execute(
                    rows::ADD_KEK_STEP,
                    params![
                        step.kind.as_str(),
                        i64::from(step.version),
                        step.at.as_millis(),
                        step.detail
                    ],
                )
                .map(|n| n == 1)
                .map_err(map_err)
            })
            .await
    }

    pub(crate) async fn sqlite_kek_steps(&self) -> StoreResult<Vec<KekStep>> {
        self.read_with(|c| {
            let mut stmt = c.prepare_cached(rows::KEK_STEPS).map_err(map_err)?;
            let found = stmt
                .query_map([], |row| {
                    Ok((
                        row.get("kind")?,
                        row.get("version")?,
                        row.get("at")?,
                        row.get("detail")?,
                        row.get("log_index")?,
                    ))
                })
                .map_err(map_err)?;
            let mut out = Vec::new();
            for r in found {
                let (kind, version, at, detail, index) = r.map_err(map_err)?;
                out.push(rows::kek_step(kind, version, at, detail, index)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn sqlite_kek_step_logged(
        &self,
        kind: KekStepKind,
        version: u32,
        index: u64,
    ) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                c.execute(
                    rows::KEK_STEP_LOGGED,
                    params![rows::signed(index), kind.as_str(), i64::from(version)],
                )
                .map(drop)
                .map_err(map_err)
            })
            .await
    }
}
