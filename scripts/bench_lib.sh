# What the benchmark scripts share; sourced by scripts/bench_*.sh, not run on its own.
# shellcheck shell=bash

# bench_setup PROFILE: go to the repository root, load the project's environment, default
# THREADS to PyTorch's thread count, build `llm` with PROFILE (release or dev) into $LLM (unless
# LLM already names a binary), and make a temporary folder $OUT that is removed on exit.
bench_setup() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    # shellcheck source=/dev/null
    source scripts/env.sh
    THREADS="${THREADS:-$(python -c 'import torch; print(torch.get_num_threads())')}"
    if [ -n "${LLM:-}" ]; then
        : # LLM=path/to/llm: that binary, unbuilt (e.g. a copy, when others build into the same target folder)
    elif [ "$1" = release ]; then
        cargo build --quiet --release --bin llm
        LLM="${CARGO_TARGET_DIR:-target}/release/llm"
    else
        cargo build --quiet --bin llm
        LLM="${CARGO_TARGET_DIR:-target}/debug/llm"
    fi
    OUT="$(mktemp -d)"
    trap 'rm -rf "$OUT"' EXIT
}

# bench_alternate SUBCOMMAND SCRIPT ARGS...: ROUNDS times, `llm bench SUBCOMMAND ARGS $EXTRA`
# and then `python SCRIPT ARGS`, each in its own process (so each peak RSS is its own), their
# JSON lines shown and kept as $OUT/ours-<round>.json and $OUT/torch-<round>.json.
bench_alternate() {
    local subcommand="$1" script="$2" round
    shift 2
    echo "# $LLM bench $subcommand $* ${EXTRA:-}"
    echo "# python $script $*"
    for round in $(seq 1 "$ROUNDS"); do
        # shellcheck disable=SC2086
        "$LLM" bench "$subcommand" "$@" ${EXTRA:-} | tee "$OUT/ours-$round.json"
        python "$script" "$@" | tee "$OUT/torch-$round.json"
    done
}
