//! What the database formats (MLflow's SQLite store, Trackio) share:
//! opening a tracker's database read-only, so a poll never takes a write
//! lock and keeps its read short, and telling the trackers apart by their
//! tables.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The first bytes of every SQLite database file.
pub(crate) const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Opens `path` read-only. A writer holding the database busy makes the
/// poll wait a little, then fail (it is tried again at the next change).
pub(crate) fn open(path: &Path) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_millis(200))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Whether the database has `table` with every one of `columns`.
pub(crate) fn has_columns(conn: &Connection, table: &str, columns: &[&str]) -> bool {
    let Ok(mut stmt) = conn.prepare("SELECT name FROM pragma_table_info(?1)") else {
        return false;
    };
    let Ok(names) = stmt.query_map([table], |row| row.get::<_, String>(0)) else {
        return false;
    };
    let names: Vec<String> = names.flatten().collect();
    columns.iter().all(|c| names.iter().any(|n| n == c))
}

/// Whether the file starts like a database and has the tables a tracker
/// needs (`tables`: table name and columns).
pub(crate) fn is_database_of(path: &Path, head: &[u8], tables: &[(&str, &[&str])]) -> bool {
    if !head.starts_with(MAGIC) {
        return false;
    }
    let Ok(conn) = open(path) else {
        return false;
    };
    tables
        .iter()
        .all(|(table, columns)| has_columns(&conn, table, columns))
}

/// An ISO 8601 time (`2026-12-01T19:44:44.463200+00:00`, `Z`, or no zone:
/// UTC) as Unix seconds.
pub(crate) fn iso_seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let rest = rest.strip_prefix(['T', ' ']).unwrap_or(rest);
    let (clock, zone) = match rest.find(['+', '-', 'Z']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut c = clock.split(':');
    let h: f64 = c
        .next()
        .filter(|s| !s.is_empty())
        .map_or(Some(0.0), |s| s.parse().ok())?;
    let min: f64 = c.next().map_or(Some(0.0), |s| s.parse().ok())?;
    let sec: f64 = c.next().map_or(Some(0.0), |s| s.parse().ok())?;
    let offset = match zone {
        "" | "Z" => 0.0,
        z => {
            let sign = if z.starts_with('-') { -1.0 } else { 1.0 };
            let mut parts = z[1..].split(':');
            let oh: f64 = parts.next()?.parse().ok()?;
            let om: f64 = parts.next().map_or(Some(0.0), |s| s.parse().ok())?;
            sign * (oh * 3600.0 + om * 60.0)
        }
    };
    Some(days_from_civil(y, m, day) as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso_seconds("1970-01-01T00:00:00"), Some(0.0));
        assert_eq!(iso_seconds("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        let t = iso_seconds("2026-12-01T19:44:44.463200+00:00").unwrap();
        assert!((t - 1_796_154_284.463_2).abs() < 1e-3, "{t}");
        assert_eq!(
            iso_seconds("2026-12-01T20:44:44+01:00"),
            iso_seconds("2026-12-01T19:44:44Z")
        );
        assert_eq!(iso_seconds("yesterday"), None);
    }
}
