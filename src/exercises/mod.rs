//! Checks for the exercise notebooks (`notebooks/exercises/`): each of the book's exercises and
//! the project's own, one function per exercise, `exercises::ch02::check_2_1(...)`.
//!
//! A check prints one line that starts with `✔` when the answer is right. When it is wrong it
//! panics with a message that starts with `✘`, names the exercise and gives a hint: a panic is
//! what the notebook runner and the grader count as a failed cell.

use std::fmt::Display;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_answer_panics_with_the_exercise_and_the_hint() {
        check("2.1", true, "right", "unused");
        let err = std::panic::catch_unwind(|| check("2.1", false, "unused", "count the tokens again")).unwrap_err();
        let msg = err.downcast_ref::<String>().expect("a formatted panic message");
        assert_eq!(msg, "✘ Exercise 2.1: count the tokens again");
    }
}
