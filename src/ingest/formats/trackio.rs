//! Trackio's project databases (`<project>.db` under Trackio's directory):
//! table `metrics` holds one row per `trackio.log` call (`run_name`,
//! `step`, ISO `timestamp`, and the logged values as a JSON object, NaN and
//! inf as the strings "NaN" and "Infinity"); table `configs` each run's
//! config. One source per run, read by row id from the last row seen.

use std::path::Path;

use rusqlite::params;

use super::sqlite;
use super::{ContentClaim, LogFormat, NameClaim, QueryReader, Reader, RunPart};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder};
use crate::ingest::run_config::{ConfigValue, RunConfig};

/// A Trackio project database.
pub(crate) struct Trackio;

const TABLES: &[(&str, &[&str])] = &[
    (
        "metrics",
        &["id", "run_name", "step", "timestamp", "metrics"],
    ),
    ("configs", &["run_name", "config"]),
];

impl LogFormat for Trackio {
    fn name(&self) -> &'static str {
        "trackio"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        if name.ends_with(".db") {
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
        let Ok(mut stmt) =
            conn.prepare("SELECT run_name FROM metrics GROUP BY run_name ORDER BY MIN(id)")
        else {
            return Vec::new();
        };
        stmt.query_map([], |row| {
            let name: String = row.get(0)?;
            Ok(RunPart {
                key: name.clone(),
                name,
            })
        })
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
    }
}

#[derive(Debug)]
struct RunRows {
    map: FieldMap,
    run: Option<String>,
    last_id: i64,
    config_read: bool,
}

impl RunRows {
    fn new(map: FieldMap, run: Option<String>) -> Self {
        RunRows {
            map,
            run,
            last_id: 0,
            config_read: false,
        }
    }
}

/// A JSON value as a number: numbers, and the strings Trackio writes for
/// non-finite floats.
fn json_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

impl QueryReader for RunRows {
    fn poll(&mut self, path: &Path, out: &mut Batch) -> Result<(), String> {
        let conn = sqlite::open(path)?;
        let err = |e: rusqlite::Error| format!("reading Trackio's metrics: {e}");
        if self.run.is_none() {
            self.run = conn
                .query_row(
                    "SELECT run_name FROM metrics ORDER BY id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .ok();
        }
        let Some(run) = self.run.clone() else {
            return Ok(());
        };
        if !self.config_read
            && let Ok(text) = conn.query_row(
                "SELECT CAST(config AS TEXT) FROM configs WHERE run_name = ?1",
                [&run],
                |r| r.get::<_, String>(0),
            )
        {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let values: Vec<(String, ConfigValue)> = value
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !k.starts_with('_'))
                .filter_map(|(k, v)| Some((k.clone(), ConfigValue::from_json(v)?)))
                .collect();
            let mut config =
                RunConfig::from_values(values.iter().map(|(k, v)| (k.as_str(), v.clone())));
            config.name = Some(run.clone());
            out.config = Some(config);
            self.config_read = true;
        }
        let mut stmt = conn
            .prepare(
                "SELECT id, step, timestamp, CAST(metrics AS TEXT) FROM metrics \
                 WHERE run_name = ?1 AND id > ?2 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![run, self.last_id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(err)?;
        for row in rows {
            let (id, step, timestamp, metrics) = row.map_err(err)?;
            self.last_id = id;
            let Ok(serde_json::Value::Object(values)) = serde_json::from_str(&metrics) else {
                out.tally.bad(id as u64, "metrics is not a JSON object");
                continue;
            };
            let mut builder = RecordBuilder::new(&self.map);
            for (key, value) in &values {
                if let Some(v) = json_number(value) {
                    let role = builder.classify(key);
                    builder.add(key, role, Num::Float(v));
                }
            }
            if let Some(s) = step.filter(|s| *s >= 0) {
                let role = builder.classify("step");
                builder.add("step", role, Num::Int(s as u64));
            }
            if let Some(t) = timestamp.as_deref().and_then(sqlite::iso_seconds) {
                let role = builder.classify("time");
                builder.add("time", role, Num::Float(t));
            }
            if let Some(rec) = builder.finish() {
                out.tally.records += 1;
                out.records.push(rec);
            }
        }
        Ok(())
    }
}
