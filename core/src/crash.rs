//! Crash points for the `kill -9` tests (feature `crash-points`, never in an app build): the
//! process SIGKILLs itself where `POLKU_CRASH_AT` names, so a test can stop it between any two
//! steps of receiving, decrypting, storing and sending (tests/tests/messaging_kill.rs).

#[cfg(feature = "crash-points")]
pub(crate) fn point(name: &str) {
    if std::env::var("POLKU_CRASH_AT").as_deref() == Ok(name) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub(crate) fn point(_name: &str) {}
