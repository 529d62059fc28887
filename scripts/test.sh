#!/usr/bin/env bash
# The test command's body (`make test`, after set-up): cargo test, the check of the committed
# notebooks (executed, no errors, no machine paths, their figures), the Chinese notebooks' sync with
# the English ones, the Python-side tests (the notebook runner and checker, the kernel, the lab
# server), then every notebook headless in quick mode.
# Prints how long each phase took.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=env.sh
source scripts/env.sh
export LLM_QUICK="${LLM_QUICK:-1}"

declare -a timings=()
phase() { # phase NAME COMMAND...: run and time one phase
    local name="$1" t0 rc=0
    shift
    t0=$(date +%s)
    echo "=== $name"
    "$@" || rc=$?
    timings+=("$(printf '%-12s %5d s%s' "$name" $(($(date +%s) - t0)) "$([ $rc -eq 0 ] || echo "  FAILED ($rc)")")")
    if [ $rc -ne 0 ]; then
        printf '%s\n' "=== timings" "${timings[@]}"
        exit $rc
    fi
}

phase "cargo build" cargo build --tests --bins
phase "cargo test" cargo test
phase "nb check" python scripts/check_notebooks.py
# The Chinese notebooks (notebooks/zh/): code in sync with the English ones, outputs of a run of it
# (they are not executed here: `scripts/zh_notebooks.py build --execute` does, by hand).
phase "zh sync" python scripts/zh_notebooks.py check
phase "python tests" python -m pytest -q tests/python
phase "notebooks" python scripts/run_notebooks.py
printf '%s\n' "=== timings" "${timings[@]}"
