//! Running `lrtop attach --summary` as a user would, for the suites that
//! check what it prints.

use std::ffi::OsStr;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// `lrtop attach --no-follow --summary --fail-on never ARGS...`: it must
/// succeed (within 20 s: a hang is a failure); one summary per run.
pub fn attach_summaries<I, S>(args: I) -> Vec<Value>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::cargo_bin("lrtop")
        .unwrap()
        .timeout(Duration::from_secs(20))
        .args(["attach", "--no-follow", "--summary", "--fail-on", "never"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
