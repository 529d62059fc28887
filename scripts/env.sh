# shellcheck shell=bash
# Source this file (after `make setup`) to work on llm-from-scratch by hand:
#
#     source scripts/env.sh
#     cargo test && cargo run --bin llm -- info && jupyter lab notebooks/
#
# It sets exactly what cargo (tch/torch-sys), the `llm` binary and Jupyter need. The same file
# is used by the Makefile, CI and the Jupyter kernel's launcher, so the LIBTORCH* variables are
# identical everywhere: any change to them makes torch-sys rebuild (~3 min).

# Everything set-up installs lives under one cache folder shared by all clones.
export LLM_FS_HOME="${LLM_FS_HOME:-$HOME/.cache/llm-from-scratch}"

# The Python environment (libtorch comes from its torch wheel). Its path is fixed by the Python
# and torch versions only, so editing environment.yml updates it in place instead of moving it
# (a new path would rebuild torch-sys in every clone).
export LLM_FS_VENV="$LLM_FS_HOME/venv-py3.11-torch2.13.0"
# The pinned evcxr_jupyter, installed once per machine.
export LLM_FS_EVCXR_VERSION="0.22.0"
export LLM_FS_EVCXR_ROOT="$LLM_FS_HOME/evcxr-$LLM_FS_EVCXR_VERSION"

# tch/torch-sys: use the libtorch inside the venv's torch package (found by running `python`).
export LIBTORCH_USE_PYTORCH=1
export VIRTUAL_ENV="$LLM_FS_VENV"

_llm_fs_prepend() { # _llm_fs_prepend VAR DIR: put DIR first in the colon list VAR, once.
    local var="$1" dir="$2" cur
    cur="${!var:-}"
    case ":$cur:" in *":$dir:"*) ;; *) export "$var=$dir${cur:+:$cur}" ;; esac
}
_llm_fs_prepend PATH "$LLM_FS_EVCXR_ROOT/bin"
_llm_fs_prepend PATH "$LLM_FS_VENV/bin"
# The shared libraries of libtorch (libtorch_cpu.so, libtorch_cuda.so, libc10.so ...): needed by
# the evcxr kernel (whose cells are not linked with our rpath) and by `cargo run` of examples.
_llm_fs_prepend LD_LIBRARY_PATH "$LLM_FS_VENV/lib/python3.11/site-packages/torch/lib"
unset -f _llm_fs_prepend
