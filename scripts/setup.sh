#!/usr/bin/env bash
# Set up everything llm-from-scratch needs, once per machine; safe to run again (it only does
# what is missing). Usage: scripts/setup.sh [python|evcxr|kernel|browser|all]   (default: all)
#
#   python  the Python environment from environment.yml (torch 2.13.0 = libtorch, Jupyter, ...)
#           in $LLM_FS_VENV, refreshed when environment.yml changes (its sha256 is stamped);
#   evcxr   evcxr_jupyter (pinned, `cargo install --locked`) in $LLM_FS_EVCXR_ROOT (~18 min on
#           2 cores, the first time only);
#   kernel  the Jupyter kernelspec `llm-from-scratch` (display name "Rust (LLM from scratch)"),
#           installed into the venv, whose launcher lives in $LLM_FS_HOME/kernel;
#   browser Debian's `chromium` (apt-get, as root; skipped when a Chromium is on PATH, or on a
#           machine without apt-get or root), for the headless check of the notebooks' slides
#           (tests/python/test_slides.py).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
mkdir -p "$LLM_FS_HOME"

log() { printf '[setup] %s\n' "$*" >&2; }
now() { date +%s; }

# One set-up at a time per machine (e.g. `make lab` and `make test` started together).
exec 8>"$LLM_FS_HOME/setup.lock"
if ! flock -n 8; then
    log "another set-up is running; waiting for it"
    flock 8
fi

find_python311() {
    local py
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            [ "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "3.11" ]; then
            command -v "$py"
            return 0
        fi
    done
    log "error: Python 3.11 is needed (python3.11 or python3 on PATH); found none"
    return 1
}

# The pip requirements are the `pip:` list of environment.yml (the only list of them).
pip_requirements() {
    awk '
        /^[[:space:]]*-[[:space:]]*pip:[[:space:]]*$/ { inpip = 1; next }
        inpip && /^[[:space:]]*-[[:space:]]*[^[:space:]]/ { sub(/^[[:space:]]*-[[:space:]]*/, ""); sub(/[[:space:]]*#.*$/, ""); print; next }
        inpip && /^[[:space:]]*$/ { next }
        inpip && /^[[:space:]]*#/ { next }
        inpip { inpip = 0 }
    ' "$repo/environment.yml"
}

setup_python() {
    local want have t0 req
    want="$(sha256sum "$repo/environment.yml" | cut -d' ' -f1)"
    have="$(cat "$LLM_FS_VENV/.environment.yml.sha256" 2>/dev/null || true)"
    if [ "$want" = "$have" ] && [ -x "$LLM_FS_VENV/bin/python" ]; then
        log "python: up to date ($LLM_FS_VENV)"
        return 0
    fi
    t0=$(now)
    if [ ! -x "$LLM_FS_VENV/bin/python" ]; then
        log "python: creating $LLM_FS_VENV"
        "$(find_python311)" -m venv "$LLM_FS_VENV"
        "$LLM_FS_VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    req="$(mktemp)"
    pip_requirements >"$req"
    if ! grep -q '^torch==' "$req"; then
        log "error: environment.yml has no 'torch==' line under 'pip:'"
        exit 1
    fi
    log "python: installing $(tr '\n' ' ' <"$req")(torch is ~4.7 GB the first time)"
    "$LLM_FS_VENV/bin/python" -m pip install --no-cache-dir --progress-bar off -r "$req"
    rm -f "$req"
    echo "$want" >"$LLM_FS_VENV/.environment.yml.sha256"
    log "python: done in $(($(now) - t0)) s"
}

setup_evcxr() {
    local bin="$LLM_FS_EVCXR_ROOT/bin/evcxr_jupyter" t0
    if [ -x "$bin" ]; then
        log "evcxr: $("$bin" --version 2>/dev/null || echo "evcxr_jupyter $LLM_FS_EVCXR_VERSION") present"
        return 0
    fi
    t0=$(now)
    log "evcxr: cargo install --locked evcxr_jupyter $LLM_FS_EVCXR_VERSION (about 18 min on 2 cores, once per machine)"
    CARGO_TARGET_DIR="$LLM_FS_HOME/evcxr-build" \
        cargo install --locked evcxr_jupyter --version "$LLM_FS_EVCXR_VERSION" --root "$LLM_FS_EVCXR_ROOT"
    rm -rf "$LLM_FS_HOME/evcxr-build"
    log "evcxr: done in $(($(now) - t0)) s"
}

setup_kernel() {
    local kdir="$LLM_FS_HOME/kernel" spec
    mkdir -p "$kdir"
    # The launcher and the env file it sources are copied out of the clone, so the kernel keeps
    # working whichever clone set it up last (the notebooks find the crate by a relative path).
    install -m 0644 "$repo/scripts/env.sh" "$kdir/env.sh"
    install -m 0755 "$repo/scripts/kernel-launcher.sh" "$kdir/launch.sh"
    spec="$(mktemp -d)/llm-from-scratch"
    mkdir -p "$spec"
    cat >"$spec/kernel.json" <<EOF
{
  "argv": ["/bin/bash", "$kdir/launch.sh", "{connection_file}"],
  "display_name": "Rust (LLM from scratch)",
  "language": "rust",
  "interrupt_mode": "message"
}
EOF
    "$LLM_FS_VENV/bin/jupyter" kernelspec install --sys-prefix --name llm-from-scratch "$spec" >/dev/null 2>&1
    rm -rf "$(dirname "$spec")"
    log "kernel: llm-from-scratch installed ($("$LLM_FS_VENV/bin/jupyter" kernelspec list | awk '$1=="llm-from-scratch"{print $2}'))"
}

setup_browser() {
    local b
    for b in chromium chromium-browser; do
        if command -v "$b" >/dev/null 2>&1; then
            log "browser: $b present"
            return 0
        fi
    done
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "browser: no Chromium, and no apt-get as root to install it: the slides check will skip (install chromium to run it)"
        return 0
    fi
    log "browser: apt-get install chromium (for the headless slides check)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } ||
        { log "error: apt-get install chromium failed"; return 1; }
    log "browser: $(chromium --version 2>/dev/null || echo chromium) installed"
}

case "${1:-all}" in
python) setup_python ;;
evcxr) setup_evcxr ;;
kernel) setup_python && setup_kernel ;;
browser) setup_browser ;;
all) setup_python && setup_evcxr && setup_kernel && setup_browser ;;
*)
    echo "usage: $0 [python|evcxr|kernel|browser|all]" >&2
    exit 2
    ;;
esac
