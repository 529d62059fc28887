//! The command-line program `llm` started from a notebook cell: appendix A's two-process training
//! (`llm pretrain --nproc 2`) and chapter 7's server (`llm serve`) run as separate processes, which
//! an evcxr cell cannot be. [`llm_command`] builds the program first (a no-op when it is up to
//! date), so a cell never runs a binary older than the library beside it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The repository this library was compiled from (evcxr compiles it from its `path` dependency).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo puts the debug build of `llm`: `$CARGO_TARGET_DIR/debug/llm`, else
/// `<repository>/target/debug/llm`.
pub fn llm_binary_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let target = if target.is_relative() { repo_root().join(target) } else { target };
    target.join("debug").join(if cfg!(windows) { "llm.exe" } else { "llm" })
}

/// A [`Command`] for the `llm` program, built with `cargo build --bin llm` in the repository
/// first (a second or two when nothing changed; minutes the first time). Its working directory is
/// the repository root. The error says what to run by hand when cargo fails.
pub fn llm_command() -> Result<Command> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--bin", "llm"])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Error::Library { library: "cargo".into(), reason: format!("could not start cargo to build `llm`: {e}") })?;
    let binary = llm_binary_path();
    if !status.success() || !binary.is_file() {
        return Err(Error::Library {
            library: "llm".into(),
            reason: format!("`cargo build --bin llm` failed ({status}); run it in the repository to see why"),
        });
    }
    let mut command = Command::new(binary);
    command.current_dir(repo_root());
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_lives_in_the_target_folder() {
        let path = llm_binary_path();
        assert!(path.ends_with("debug/llm"), "{path:?} should end with debug/llm");
        assert!(path.is_absolute(), "{path:?} should be absolute so a notebook in any folder can run it");
    }
}
