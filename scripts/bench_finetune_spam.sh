#!/usr/bin/env bash
# Chapter 6 fine-tuning-step throughput (examples/s) and peak memory of GPT-2 small's shape with
# random weights, fp32, CPU, only the last block + final_norm + 2-class head trainable: this crate
# (`llm bench finetune-spam`) against PyTorch eager running the book's code
# (benches/finetune_spam_pytorch.py), each in its own process (so each peak RSS is its own),
# alternating ROUNDS times on the same machine. Prints each JSON line, then the ratios ours / PyTorch.
#
#   scripts/bench_finetune_spam.sh                  # batch 8, 120 tokens, 5 timed steps, 3 rounds
#   ROUNDS=5 STEPS=3 THREADS=1 scripts/bench_finetune_spam.sh
#   EXTRA="--full-forward" scripts/bench_finetune_spam.sh   # the book's model(x)[:, -1, :] here too
#
# The ratios are those of the medians over the rounds (each round's figure is its median step),
# and of the fastest steps of all rounds (the least disturbed by other processes). The release
# build of `llm` is used.
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_setup release

CONFIG="${CONFIG:-gpt2-small}"
BATCH="${BATCH:-8}"
MAX_LENGTH="${MAX_LENGTH:-120}"
STEPS="${STEPS:-5}"
WARMUP="${WARMUP:-1}"
ROUNDS="${ROUNDS:-3}"
EXTRA="${EXTRA:-}"

common=(--config "$CONFIG" --batch-size "$BATCH" --max-length "$MAX_LENGTH" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS")
bench_alternate finetune-spam benches/finetune_spam_pytorch.py "${common[@]}"

python - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours = [json.load(open(f"{out}/ours-{r}.json")) for r in range(1, rounds + 1)]
torch = [json.load(open(f"{out}/torch-{r}.json")) for r in range(1, rounds + 1)]
med = lambda runs, key: statistics.median(r[key] for r in runs)
print()
print("| | examples/s | step s | CPU s / step | peak RSS MB | trainable params |")
print("|---|---|---|---|---|---|")
for name, runs in (("llm-from-scratch", ours), ("PyTorch eager", torch)):
    print(f"| {name} | {med(runs, 'examples_per_s'):.2f} | {med(runs, 'step_s_median'):.3f} | {med(runs, 'cpu_s_median'):.3f} | "
          f"{med(runs, 'peak_rss_mb'):.0f} | {runs[0]['trainable_params']:,} |")
print()
for r, (o, t) in enumerate(zip(ours, torch), 1):
    print(f"round {r}: examples/s ratio {o['examples_per_s'] / t['examples_per_s']:.3f}, peak RSS ratio {o['peak_rss_mb'] / t['peak_rss_mb']:.3f}")
best = lambda runs: max(r["examples_per_s_best"] for r in runs)
print(f"examples/s ratio (ours / PyTorch), median steps: {med(ours, 'examples_per_s') / med(torch, 'examples_per_s'):.3f}")
print(f"examples/s ratio (ours / PyTorch), fastest step of all rounds: {best(ours) / best(torch):.3f} "
      f"({best(ours):.2f} / {best(torch):.2f} examples/s)")
print(f"peak RSS ratio (ours / PyTorch): {med(ours, 'peak_rss_mb') / med(torch, 'peak_rss_mb'):.3f}")
print(f"CPU seconds per step ratio (PyTorch / ours, > 1: ours needs less CPU time): "
      f"{med(torch, 'cpu_s_median') / med(ours, 'cpu_s_median'):.3f}")
o, t = ours[0], torch[0]
assert o["trainable_params"] == t["trainable_params"], (o["trainable_params"], t["trainable_params"])
print(f"{o['config']}, batch {o['batch_size']}, {o['max_length']} tokens, {o['threads']} threads, {o['device']}, "
      f"forward: ours {o['forward']}, PyTorch {t['forward']}; median of {o['steps']} steps after {o['warmup']} warm-up, {rounds} round(s)")
print(f"first losses: ours {o['losses'][:3]}, PyTorch {t['losses'][:3]}")
PY
