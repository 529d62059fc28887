//! Checks for the exercise notebooks (`notebooks/exercises/`): each of the book's exercises and
//! the project's own, one function per exercise, `exercises::ch02::check_2_1(...)`.
//!
//! A check prints one line that starts with `✔` when the answer is right. When it is wrong it
//! panics with a message that starts with `✘`, names the exercise and gives a hint: a panic is
//! what the notebook runner and the grader count as a failed cell.

use std::fmt::Display;

use tch::{Kind, Tensor};

pub mod appendix_a;
pub mod ch02;
pub mod ch03;
pub mod ch04;
pub mod ch05;
pub mod ch06;
pub mod ch07;

/// Report a right answer: prints `✔ Exercise {id}: {what}`.
pub fn pass(id: &str, what: impl Display) {
    println!("✔ Exercise {id}: {what}");
}

/// Report a wrong answer: panics with `✘ Exercise {id}: {hint}`.
#[track_caller]
pub fn fail(id: &str, hint: impl Display) -> ! {
    panic!("✘ Exercise {id}: {hint}")
}

/// Pass when `ok`, otherwise fail with `hint`.
#[track_caller]
pub fn check(id: &str, ok: bool, what: impl Display, hint: impl Display) {
    if ok {
        pass(id, what)
    } else {
        fail(id, hint)
    }
}

/// The value of the library's reference computation; when it cannot be computed (a data file
/// missing, ...), fails the exercise with the reason, so the learner sees it is not their answer.
#[track_caller]
pub fn reference<T, E: Display>(id: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| fail(id, format!("the reference answer could not be computed: {e}")))
}

/// Pass when tensor `got` has the shape of `want` and its values are within `tol` of it; else fail
/// naming the shapes, or the largest difference and `hint`.
#[track_caller]
pub fn check_close(id: &str, got: &Tensor, want: &Tensor, tol: f64, what: impl Display, hint: impl Display) {
    if got.size() != want.size() {
        fail(id, format!("the shape should be {:?}, not {:?}; {hint}", want.size(), got.size()));
    }
    let diff = max_diff(got, want);
    check(id, diff <= tol, what, format!("off by up to {diff:.3e}; {hint}"))
}

/// The largest absolute difference of two tensors of one shape (as f64; NaN counts as infinite).
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[]);
    if d.is_nan() {
        f64::INFINITY
    } else {
        d
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The message a failing check panics with (panics itself if `f` passes).
    pub(crate) fn failure(f: impl FnOnce()) -> String {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("a wrong answer must fail the check");
        err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
    }

    /// Assert that `f` fails exercise `id` (panics with its `✘` message).
    pub(crate) fn fails(id: &str, f: impl FnOnce()) {
        let msg = failure(f);
        assert!(msg.starts_with(&format!("✘ Exercise {id}: ")), "the check of {id} must fail with its own message, got {msg:?}");
    }

    #[test]
    fn a_wrong_answer_panics_with_the_exercise_and_the_hint() {
        check("2.1", true, "right", "unused");
        let err = std::panic::catch_unwind(|| check("2.1", false, "unused", "count the tokens again")).unwrap_err();
        let msg = err.downcast_ref::<String>().expect("a formatted panic message");
        assert_eq!(msg, "✘ Exercise 2.1: count the tokens again");
    }
}
