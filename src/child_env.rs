//! Environment variables lrtop changes for itself, with the values they
//! had: Candle reads its thread count from the environment
//! (`CANDLE_NUM_THREADS`, `RAYON_NUM_THREADS`), so a training run sets it,
//! and the processes a user's options start (`--on-alert` hooks) get the
//! user's environment back.

use std::ffi::OsString;
use std::process::Command;
use std::sync::Mutex;

static SAVED: Mutex<Vec<(&'static str, Option<OsString>)>> = Mutex::new(Vec::new());

/// Sets `name` for this process, remembering the value it had (the first
/// time it is set).
///
/// # Safety
/// As [`std::env::set_var`]: no other thread may read or write the
/// environment meanwhile (call it while the process has one thread).
pub unsafe fn set_for_this_process(name: &'static str, value: &str) {
    let mut saved = SAVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !saved.iter().any(|(n, _)| *n == name) {
        saved.push((name, std::env::var_os(name)));
    }
    // SAFETY: the caller guarantees that no other thread uses the environment.
    unsafe { std::env::set_var(name, value) };
}

/// Gives `cmd` the values the user had for every variable lrtop set.
pub fn restore_user_env(cmd: &mut Command) -> &mut Command {
    let saved = SAVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (name, value) in saved.iter() {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_get_the_users_values_back() {
        // Recorded as set_for_this_process records them (without changing
        // this test process's environment, which other tests read).
        SAVED.lock().unwrap().extend([
            ("LRTOP_CHILD_ENV_TEST_UNSET", None),
            (
                "LRTOP_CHILD_ENV_TEST_SET",
                Some(OsString::from("the user's")),
            ),
        ]);
        let mut cmd = Command::new("sh");
        restore_user_env(&mut cmd);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(std::ffi::OsStr::new("LRTOP_CHILD_ENV_TEST_UNSET"), None)));
        assert!(envs.contains(&(
            std::ffi::OsStr::new("LRTOP_CHILD_ENV_TEST_SET"),
            Some(std::ffi::OsStr::new("the user's"))
        )));
    }
}
