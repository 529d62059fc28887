//! Ctrl-C and SIGTERM during a training command: the first signal asks the training loop to
//! stop after the step it is in ([`llm_from_scratch::ch05::request_stop`]); the command then
//! saves its run, prints the command that resumes it and exits with status 130 (by returning
//! [`Interrupted`]). A second signal exits at once, with status 130 (the last checkpoint, written
//! atomically, stays whole).

use llm_from_scratch::ch05::{request_stop, stop_requested};

/// The exit status of a program ended by SIGINT (128 + 2), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only async-signal-safe calls here: an atomic load and store, and _exit.
    if stop_requested() {
        unsafe { libc::_exit(EXIT_INTERRUPTED as libc::c_int) };
    }
    request_stop();
}

/// Handle SIGINT and SIGTERM as described in the module docs, for the rest of the process.
pub fn stop_on_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
        unsafe { libc::signal(signal, handler) };
    }
}

/// A training command stopped by a signal after saving its run; `resume` is the command that
/// continues it. `main` prints it and exits with [`EXIT_INTERRUPTED`].
#[derive(Debug)]
pub struct Interrupted {
    pub resume: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted: the run is saved; continue it with `{}`", self.resume)
    }
}

impl std::error::Error for Interrupted {}
