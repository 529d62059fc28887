//! Stopping a training run cleanly (issue 13): a request to stop that the training loop
//! ([`crate::training::trainer::train_steps`]) checks before each step. The `llm` program sets it
//! from its SIGINT/SIGTERM handler (an atomic store is async-signal-safe), then saves the run and
//! prints the command that resumes it; a notebook or a program of your own may call
//! [`request_stop`] from another thread.
//!
//! The request is global to the process (a signal is): every training loop running in it stops
//! before its next step, until [`clear_stop`].

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Ask every training loop of the process to return before its next step (the step running now
/// finishes, its evaluation included), leaving its state consistent for a checkpoint.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested (and not cleared since).
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Withdraw a request to stop, so that training can continue in this process.
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}
