//! MLflow's SQLite store (`mlflow.db`, or any database with MLflow's
//! tables): one source per run of the `runs` table; its metrics are the
//! rows of `metrics` (`key, value, timestamp ms, step, is_nan`), read in
//! rowid order, a poll at a time from the last row seen. NaN is stored as
//! 0 with `is_nan = 1`; ±inf as ±f64::MAX, which MLflow itself returns.

use std::path::Path;

use rusqlite::params;

use super::sqlite;
use super::{ContentClaim, LogFormat, NameClaim, QueryReader, Reader, RunPart};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder};
use crate::ingest::run_config::{ConfigValue, RunConfig};

/// MLflow's SQLite store.
pub(crate) struct MlflowSqlite;

const TABLES: &[(&str, &[&str])] = &[
    (
        "metrics",
        &["key", "value", "timestamp", "run_uuid", "step", "is_nan"],
    ),
    ("runs", &["run_uuid", "name"]),
];

impl LogFormat for MlflowSqlite {
    fn name(&self) -> &'static str {
        "mlflow-sqlite"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        if name == "mlflow.db" {
            NameClaim::Certain
        } else if name.ends_with(".db") || name.ends_with(".sqlite") {
            NameClaim::Weak
        } else {
            NameClaim::No
        }
    }

    fn claim_content(&self, _head: &[u8], _complete: bool) -> ContentClaim {
        ContentClaim::No
    }

    fn claim_file(&self, path: &Path, head: &[u8], _complete: bool) -> ContentClaim {
        if sqlite::is_database_of(path, head, TABLES) {
            ContentClaim::Strong
        } else {
            ContentClaim::No
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Query(Box::new(RunRows::new(map.clone(), None)))
    }

    fn part_reader(&self, map: &FieldMap, part: &str) -> Reader {
        Reader::Query(Box::new(RunRows::new(map.clone(), Some(part.to_string()))))
    }

    fn holds_runs(&self) -> bool {
        true
    }

    fn runs_in(&self, path: &Path) -> Vec<RunPart> {
        let Ok(conn) = sqlite::open(path) else {
            return Vec::new();
        };
        let Ok(mut stmt) = conn.prepare(
            "SELECT run_uuid, COALESCE(name, run_uuid) FROM runs ORDER BY start_time, run_uuid",
        ) else {
            return Vec::new();
        };
        stmt.query_map([], |row| {
            Ok(RunPart {
                key: row.get(0)?,
                name: row.get(1)?,
            })
        })
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
    }
}

/// The rows of one run (`run`; None: the first run of the database).
#[derive(Debug)]
struct RunRows {
    map: FieldMap,
    run: Option<String>,
    last_rowid: i64,
    config_read: bool,
}

impl RunRows {
    fn new(map: FieldMap, run: Option<String>) -> Self {
        RunRows {
            map,
            run,
            last_rowid: 0,
            config_read: false,
        }
    }
}

impl QueryReader for RunRows {
    fn poll(&mut self, path: &Path, out: &mut Batch) -> Result<(), String> {
        let conn = sqlite::open(path)?;
        let err = |e: rusqlite::Error| format!("reading MLflow's metrics: {e}");
        if self.run.is_none() {
            self.run = conn
                .query_row(
                    "SELECT run_uuid FROM runs ORDER BY start_time LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .ok();
        }
        let Some(run) = self.run.clone() else {
            return Ok(());
        };
        if !self.config_read {
            out.config = Some(config_of(&conn, &run));
            self.config_read = true;
        }
        let mut stmt = conn
            .prepare(
                "SELECT rowid, key, value, timestamp, step, is_nan FROM metrics \
                 WHERE run_uuid = ?1 AND rowid > ?2 ORDER BY rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![run, self.last_rowid], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, f64>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<bool>>(5)?,
                ))
            })
            .map_err(err)?;
        for row in rows {
            let (rowid, key, value, timestamp, step, is_nan) = row.map_err(err)?;
            self.last_rowid = rowid;
            let value = if is_nan == Some(true) {
                f64::NAN
            } else {
                value
            };
            let mut builder = RecordBuilder::new(&self.map);
            let role = builder.classify(&key);
            builder.add(&key, role, Num::Float(value));
            if let Some(s) = step.filter(|s| *s >= 0) {
                let role = builder.classify("step");
                builder.add("step", role, Num::Int(s as u64));
            }
            if let Some(ms) = timestamp {
                let role = builder.classify("time");
                builder.add("time", role, Num::Float(ms as f64 / 1000.0));
            }
            if let Some(rec) = builder.finish() {
                out.tally.records += 1;
                out.records.push(rec);
            }
        }
        Ok(())
    }
}

fn config_of(conn: &rusqlite::Connection, run: &str) -> RunConfig {
    let mut values: Vec<(String, ConfigValue)> = Vec::new();
    if let Ok(mut stmt) = conn.prepare("SELECT key, value FROM params WHERE run_uuid = ?1")
        && let Ok(rows) = stmt.query_map([run], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
    {
        values.extend(rows.flatten().map(|(k, v)| (k, ConfigValue::from_text(&v))));
    }
    let mut config = RunConfig::from_values(values.iter().map(|(k, v)| (k.as_str(), v.clone())));
    config.name = conn
        .query_row("SELECT name FROM runs WHERE run_uuid = ?1", [run], |r| {
            r.get::<_, Option<String>>(0)
        })
        .ok()
        .flatten();
    config
}
