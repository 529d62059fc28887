#!/usr/bin/env bash
# Forward-pass throughput of GPT-2 small (124M), fp32, eval mode, no gradients: this crate
# (explicit attention and fused SDPA) against PyTorch eager running the same model
# (benches/forward_pytorch.py), on the same machine, back to back, at context 256 and 1024.
#
#   scripts/bench_forward.sh
#   ROUNDS=3 RUNS=3 BATCH=2 THREADS=2 CONTEXTS="256 1024" scripts/bench_forward.sh
#
# Each round runs, per context, `llm bench forward` and then the PyTorch script (each: WARMUP
# untimed and RUNS timed passes per attention path, alternating the paths). Other processes on a
# shared machine only ever slow a pass down, so the summary gives tokens/s from the fastest pass
# over all rounds, and in brackets from the median of the rounds' medians. Prints every JSON line,
# then a Markdown table of tokens/s and ratios.
#
# `llm` is built with the dev profile (dependencies at opt-level 3; the time is spent in libtorch).
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_setup dev

CONFIG="${CONFIG:-gpt2-small}"
BATCH="${BATCH:-2}"
ROUNDS="${ROUNDS:-3}"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-1}"
CONTEXTS="${CONTEXTS:-256 1024}"

for round in $(seq 1 "$ROUNDS"); do
    for ctx in $CONTEXTS; do
        common=(--config "$CONFIG" --context-length "$ctx" --batch-size "$BATCH" --runs "$RUNS" --warmup "$WARMUP" --threads "$THREADS")
        "$LLM" bench forward "${common[@]}" | tee -a "$OUT/rust-$ctx.jsonl"
        python benches/forward_pytorch.py "${common[@]}" | tee -a "$OUT/torch-$ctx.jsonl"
    done
done

python - "$OUT" $CONTEXTS <<'PY'
import json, statistics, sys
out, contexts = sys.argv[1], sys.argv[2:]
load = lambda path: [json.loads(line) for line in open(path)]
print()
print("tokens/s from the fastest pass over all rounds [from the median of the rounds' medians]")
print()
print("| context | Rust explicit | Rust SDPA | PyTorch explicit | PyTorch SDPA | Rust/PyTorch explicit | Rust/PyTorch SDPA | Rust SDPA/explicit |")
print("|---|---|---|---|---|---|---|---|")
for ctx in contexts:
    rust, torch = load(f"{out}/rust-{ctx}.jsonl"), load(f"{out}/torch-{ctx}.jsonl")
    tokens = rust[0]["batch_size"] * rust[0]["context_length"]
    best = lambda rows, path: tokens / min(r[f"{path}_best_ms"] for r in rows) * 1e3
    med = lambda rows, path: tokens / statistics.median(r[f"{path}_ms"] for r in rows) * 1e3
    cells, ratios = [], []
    for f in (best, med):
        re, rs, te, ts = f(rust, "explicit"), f(rust, "sdpa"), f(torch, "explicit"), f(torch, "sdpa")
        cells.append((re, rs, te, ts))
        ratios.append((re / te, rs / ts, rs / re))
    (b, m), (rb, rm) = cells, ratios
    row = [f"{x:.1f} [{y:.1f}]" for x, y in zip(b, m)] + [f"{x:.2f} [{y:.2f}]" for x, y in zip(rb, rm)]
    print(f"| {ctx} | " + " | ".join(row) + " |")
r, t = rust[0], torch[0]
print(f"\n{len(rust)} rounds; batch {r['batch_size']}, {r['threads']} threads, device {r['device']}, "
      f"{r['runs']} timed passes per path after {r['warmup']} warm-up; {t['implementation']}")
PY
