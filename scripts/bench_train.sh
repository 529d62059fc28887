#!/usr/bin/env bash
# Training-step throughput and peak memory of GPT-2 small (124M), fp32, AdamW, CPU: this crate
# (`llm bench train`) against PyTorch eager running the book's model (benches/train_pytorch.py),
# each in its own process (so each peak RSS is its own), one after the other, on the same machine.
# Prints each JSON line, then the ratios ours / PyTorch.
#
#   scripts/bench_train.sh                     # batch 2, context 256, 5 timed steps, 2 threads
#   ROUNDS=3 STEPS=3 THREADS=2 scripts/bench_train.sh
#   EXTRA="--loss-backward" scripts/bench_train.sh   # the book's loss.backward() instead
#
# ROUNDS > 1 alternates the two programs that many times (a shared machine drifts); the ratios
# are then those of the medians over the rounds, and of the fastest steps of all rounds (the
# least disturbed by other processes). The release build of `llm` is used.
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_setup release

CONFIG="${CONFIG:-gpt2-small}"
BATCH="${BATCH:-2}"
CONTEXT="${CONTEXT:-256}"
STEPS="${STEPS:-5}"
WARMUP="${WARMUP:-1}"
ROUNDS="${ROUNDS:-1}"
EXTRA="${EXTRA:-}"

common=(--config "$CONFIG" --batch-size "$BATCH" --context-length "$CONTEXT" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS")
bench_alternate train benches/train_pytorch.py "${common[@]}"

python - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours = [json.load(open(f"{out}/ours-{r}.json")) for r in range(1, rounds + 1)]
torch = [json.load(open(f"{out}/torch-{r}.json")) for r in range(1, rounds + 1)]
med = lambda runs, key: statistics.median(r[key] for r in runs)
print()
print("| | tokens/s | step s | forward s | backward s | optimizer s | CPU s / step | peak RSS MB | matmul GFLOP/s | MFU |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, runs in (("llm-from-scratch", ours), ("PyTorch eager", torch)):
    print(f"| {name} | {med(runs, 'tokens_per_s'):.2f} | {med(runs, 'step_s_median'):.2f} | {med(runs, 'forward_s'):.2f} | "
          f"{med(runs, 'backward_s'):.2f} | {med(runs, 'optimizer_s'):.2f} | {med(runs, 'cpu_s_median'):.2f} | {med(runs, 'peak_rss_mb'):.0f} | "
          f"{med(runs, 'matmul_gflops'):.1f} | {med(runs, 'mfu'):.3f} |")
print()
if rounds > 1:
    for r, (o, t) in enumerate(zip(ours, torch), 1):
        print(f"round {r}: tokens/s ratio {o['tokens_per_s'] / t['tokens_per_s']:.3f}, peak RSS ratio {o['peak_rss_mb'] / t['peak_rss_mb']:.3f}")
best = lambda runs: max(r["tokens_per_s_best"] for r in runs)
print(f"tokens/s ratio (ours / PyTorch), median steps: {med(ours, 'tokens_per_s') / med(torch, 'tokens_per_s'):.3f}")
print(f"tokens/s ratio (ours / PyTorch), fastest step of all rounds: {best(ours) / best(torch):.3f} "
      f"({best(ours):.1f} / {best(torch):.1f} tokens/s)")
print(f"peak RSS ratio (ours / PyTorch): {med(ours, 'peak_rss_mb') / med(torch, 'peak_rss_mb'):.3f}")
print(f"CPU seconds per step ratio (PyTorch / ours, > 1: ours does the step with less CPU time): "
      f"{med(torch, 'cpu_s_median') / med(ours, 'cpu_s_median'):.3f}")
# The same libtorch matmul is timed in every process; its median over all of them is the
# common denominator of the model-FLOPs utilisation 6 * parameters * tokens/s / matmul FLOP/s.
flops = statistics.median([r["matmul_gflops"] for r in ours + torch]) * 1e9
mfu = lambda runs: 6 * runs[0]["params"] * med(runs, "tokens_per_s") / flops
print(f"MFU against the median matmul throughput of all runs ({flops / 1e9:.1f} GFLOP/s, fp32 2048^3): "
      f"ours {mfu(ours):.3f}, PyTorch {mfu(torch):.3f}")
o, t = ours[0], torch[0]
print(f"{o['config']}, batch {o['batch_size']}, context {o['context_length']}, {o['threads']} threads, {o['device']}, "
      f"{o['attention']} attention, {o['backward']}; median of {o['steps']} steps after {o['warmup']} warm-up, {rounds} round(s)")
print(f"first losses: ours {o['losses'][:3]}, PyTorch {t['losses'][:3]}")
PY
