#!/usr/bin/env bash
# Launcher of the Jupyter kernel `llm-from-scratch` ("Rust (LLM from scratch)").
# scripts/setup.sh copies it, with env.sh, to $LLM_FS_HOME/kernel/ and points the kernelspec at
# the copy. Usage (by Jupyter): launch.sh CONNECTION_FILE
#
# It sets the project's environment (env.sh: libtorch, the venv, LD_LIBRARY_PATH) and gives the
# kernel a kept EVCXR_TMPDIR, so `:dep llm_from_scratch` and tch are compiled once per slot
# (~25 s to the first output afterwards, instead of ~5 min). Two live kernels must not share a
# folder, so the folders form a pool of slots, each held by a lock for as long as its kernel
# lives (the lock's file descriptor is inherited by evcxr_jupyter through `exec`). When all slots
# are taken, the kernel gets a fresh temporary folder: correct, only slow.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

slots="${LLM_FS_KERNEL_SLOTS:-4}"
pool="$LLM_FS_HOME/evcxr-slots"
mkdir -p "$pool"
slot=""
for ((i = 0; i < slots; i++)); do
    exec 9>"$pool/slot-$i.lock"
    if flock -n 9; then
        slot="$pool/slot-$i"
        break
    fi
    exec 9>&-
done
if [ -z "$slot" ]; then
    slot="$(mktemp -d "${TMPDIR:-/tmp}/llm-fs-evcxr-XXXXXX")"
    echo "llm-from-scratch kernel: all $slots kept build folders are in use; compiling in $slot (slow)" >&2
fi
mkdir -p "$slot"
export EVCXR_TMPDIR="$slot"

# evcxr links each cell against Rust's shared libstd and relies on an rpath relative to the
# build's deps/ folder, but loads the cell from one folder up; under $HOME that relative path
# misses the toolchain (it only works by luck under /tmp). Name the toolchain's folder directly.
rust_lib="$(rustc --print target-libdir 2>/dev/null || true)"
if [ -n "$rust_lib" ]; then
    export LD_LIBRARY_PATH="$rust_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

exec "$LLM_FS_EVCXR_ROOT/bin/evcxr_jupyter" --control_file "$1"
