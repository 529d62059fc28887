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
# are taken, the kernel gets a fresh temporary folder.
#
# A cold folder (no target/ yet) starts as a copy of the most recently used warm slot, so a second
# notebook opened next to a live one does not compile tch again. What evcxr keeps in EVCXR_TMPDIR
# is an ordinary cargo project: Cargo.toml, Cargo.lock, src/lib.rs (rewritten for every cell),
# .cargo/config.toml and target/. Nothing in it names the folder itself (`:dep` paths are made
# absolute to the crate, RUSTFLAGS is only -Cprefer-dynamic, build-script outputs are relocated by
# cargo, rpaths are $ORIGIN-relative), so after `cp -a` (which keeps mtimes) cargo finds every
# dependency fresh. A copy taken while the source's cargo writes would not be safe: cargo trusts an
# output whose fingerprint is intact even when the file is truncated (tried with cargo 1.95). So
# the copy is made while holding cargo's own build-directory locks (target/*/.cargo-lock, shared):
# the live kernel's next build waits for the copy, and a build in progress makes us wait for it
# (at most LLM_FS_KERNEL_SEED_WAIT seconds, then the folder starts cold).
#
# Settings (environment): LLM_FS_KERNEL_SLOTS (4), LLM_FS_KERNEL_POOL ($LLM_FS_HOME/evcxr-slots),
# LLM_FS_KERNEL_SEED_WAIT (30 s), LLM_FS_KERNEL_EVCXR (the evcxr_jupyter binary; tests use a fake).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

slots="${LLM_FS_KERNEL_SLOTS:-4}"
pool="${LLM_FS_KERNEL_POOL:-$LLM_FS_HOME/evcxr-slots}"
seed_wait="${LLM_FS_KERNEL_SEED_WAIT:-30}"
evcxr="${LLM_FS_KERNEL_EVCXR:-$LLM_FS_EVCXR_ROOT/bin/evcxr_jupyter}"
say() { echo "llm-from-scratch kernel: $*" >&2; }

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
    say "all $slots kept build folders are in use; building in $slot"
fi

# warm_slots: the pool's slots that hold a cargo build, most recently used first (evcxr rewrites
# src/lib.rs for every cell), one per line.
warm_slots() {
    local s
    for s in "$pool"/slot-*/; do
        s="${s%/}"
        if [[ "${s##*/}" =~ ^slot-[0-9]+$ ]] && [ "$s" != "$slot" ] &&
            [ -f "$s/target/debug/.cargo-lock" ] && [ -f "$s/src/lib.rs" ]; then
            printf '%s %s\n' "$(stat -c %Y "$s/src/lib.rs")" "$s"
        fi
    done | sort -rn | cut -d' ' -f2-
}

# copy_locked SRC WAIT: copy slot SRC into $slot while holding SRC's cargo build locks (shared, so
# that two new kernels may copy the same slot at once); give up if they are not free within WAIT
# seconds. The copy goes to a hidden side folder and is renamed into place once complete, so an
# interrupted launch never leaves a half-copied folder that looks warm.
copy_locked() {
    local src="$1" wait="$2" side="${slot%/*}/.${slot##*/}.seeding" lock fd fds=() t0 rc=0
    for lock in "$src"/target/debug/.cargo-lock "$src"/target/*/debug/.cargo-lock; do
        [ -f "$lock" ] || continue
        exec {fd}<"$lock"
        fds+=("$fd")
        if ! flock -s -w "$wait" "$fd"; then
            rc=1
            break
        fi
    done
    if [ "$rc" -eq 0 ]; then
        t0=$SECONDS
        rm -rf "$side"
        if cp -a --reflink=auto "$src" "$side"; then
            rm -rf "$slot"
            mv "$side" "$slot"
            echo "$src" >"$slot/.llm-fs-seeded-from"
            say "started $slot as a copy of $src ($((SECONDS - t0)) s)"
        else
            rm -rf "$side"
            rc=1
        fi
    fi
    for fd in "${fds[@]}"; do exec {fd}<&-; done
    return "$rc"
}

# A cold folder copies an idle warm slot when there is one, else waits for the most recent one.
if [ ! -d "$slot/target" ]; then
    mapfile -t warm < <(warm_slots)
    seeded=""
    for src in "${warm[@]}"; do
        if copy_locked "$src" 0; then seeded=1 && break; fi
    done
    if [ -z "$seeded" ] && [ "${#warm[@]}" -gt 0 ]; then
        say "waiting up to $seed_wait s for the build in ${warm[0]} to finish, to copy it"
        copy_locked "${warm[0]}" "$seed_wait" && seeded=1
    fi
    if [ -z "$seeded" ]; then
        say "no warm build folder to copy; the first \`:dep\` compiles tch in $slot (~4-5 min)"
    fi
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

exec "$evcxr" --control_file "$1"
