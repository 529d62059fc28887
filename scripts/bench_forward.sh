#!/usr/bin/env bash
# Forward-pass throughput of GPT-2 small (124M), fp32, eval mode, no gradients: this crate
# (explicit attention and fused SDPA) against PyTorch eager running the same model, on the same
# machine, back to back, at context 256 and 1024. Prints each JSON line, then a table of ratios.
#
#   scripts/bench_forward.sh                       # batch 2, 5 timed runs, libtorch's threads
#   RUNS=3 BATCH=2 THREADS=2 CONTEXTS="256 1024" scripts/bench_forward.sh
#
# It builds `llm` with the dev profile (dependencies at opt-level 3: the time is spent in
# libtorch either way).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh

CONFIG="${CONFIG:-gpt2-small}"
BATCH="${BATCH:-2}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
CONTEXTS="${CONTEXTS:-256 1024}"
THREADS="${THREADS:-$(python -c 'import torch; print(torch.get_num_threads())')}"

cargo build --quiet --bin llm
LLM="${CARGO_TARGET_DIR:-target}/debug/llm"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

for ctx in $CONTEXTS; do
    common=(--config "$CONFIG" --context-length "$ctx" --batch-size "$BATCH" --runs "$RUNS" --warmup "$WARMUP" --threads "$THREADS")
    "$LLM" bench forward "${common[@]}" | tee "$OUT/rust-$ctx.json"
    python benches/forward_pytorch.py "${common[@]}" | tee "$OUT/torch-$ctx.json"
done

python - "$OUT" $CONTEXTS <<'PY'
import json, sys
out, contexts = sys.argv[1], sys.argv[2:]
print()
print("tokens/s from the median pass (in brackets: from the fastest pass)")
print()
print("| context | Rust explicit | Rust SDPA | PyTorch explicit | PyTorch SDPA | Rust/PyTorch explicit | Rust/PyTorch SDPA | Rust SDPA/explicit |")
print("|---|---|---|---|---|---|---|---|")
for ctx in contexts:
    r = json.load(open(f"{out}/rust-{ctx}.json"))
    t = json.load(open(f"{out}/torch-{ctx}.json"))
    tokens = r["batch_size"] * r["context_length"]
    tps = lambda d, k: tokens / d[k] * 1e3
    re, rs, te, ts = (tps(r, "explicit_ms"), tps(r, "sdpa_ms"), tps(t, "explicit_ms"), tps(t, "sdpa_ms"))
    bre, brs, bte, bts = (tps(r, "explicit_best_ms"), tps(r, "sdpa_best_ms"), tps(t, "explicit_best_ms"), tps(t, "sdpa_best_ms"))
    print(f"| {ctx} | {re:.1f} [{bre:.1f}] | {rs:.1f} [{brs:.1f}] | {te:.1f} [{bte:.1f}] | {ts:.1f} [{bts:.1f}] "
          f"| {re / te:.2f} [{bre / bte:.2f}] | {rs / ts:.2f} [{brs / bts:.2f}] | {rs / re:.2f} [{brs / bre:.2f}] |")
print(f"\nbatch {r['batch_size']}, {r['threads']} threads, device {r['device']}, {r['runs']} timed runs after {r['warmup']} warm-up; {t['implementation']}")
PY
