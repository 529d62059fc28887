#!/usr/bin/env bash
# Time per DPO training step (bonus of chapter 7) of GPT-2 small (124M) with random weights, fp32:
# this crate (`llm bench dpo-step`: the policy's DPO loss against a frozen reference, backward,
# AdamW lr 5e-6 / weight decay 0.01) against PyTorch eager running the book's DPO functions
# (benches/dpo_pytorch.py) on the same libtorch, each in its own process, alternating ROUNDS
# times on the same machine. Both time the same tokens: the first training batch of the book's
# preference data (instruction-data-with-preference.json, from LLM_DATA_DIR or the cache),
# written once by `llm bench dpo-step --write-batch`. Prints each JSON line, then ours / PyTorch
# (< 1: ours takes less time). The losses of both sides agree (same seed, same weights): a
# parity check of the DPO loss and AdamW step as well. Ours runs the policy and the reference
# once on the chosen and rejected rows together (the library's packed batch); the book's code
# runs each model twice, once per half.
#
#   scripts/bench_dpo.sh                          # batch 8, 3 timed steps after 1 warm-up, 1 round
#   BATCH=2 STEPS=2 ROUNDS=2 THREADS=2 scripts/bench_dpo.sh
#   PROFILE=dev scripts/bench_dpo.sh              # the dev build of `llm` (no release build needed;
#                                                 # the step's time is libtorch's either way)
#   LLM=/tmp/llm scripts/bench_dpo.sh             # a binary already built (nothing is built)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_setup "${PROFILE:-release}"

CONFIG="${CONFIG:-gpt2-small}"
BATCH="${BATCH:-8}"
STEPS="${STEPS:-3}"
WARMUP="${WARMUP:-1}"
ROUNDS="${ROUNDS:-1}"
EXTRA="${EXTRA:-}"

"$LLM" bench dpo-step --config "$CONFIG" --batch-size "$BATCH" --write-batch "$OUT/batch.safetensors"
common=(--config "$CONFIG" --batch "$OUT/batch.safetensors" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS")
bench_alternate dpo-step benches/dpo_pytorch.py "${common[@]}"

python - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours = [json.load(open(f"{out}/ours-{r}.json")) for r in range(1, rounds + 1)]
torch = [json.load(open(f"{out}/torch-{r}.json")) for r in range(1, rounds + 1)]
med = lambda runs, key: statistics.median(r[key] for r in runs)
print()
print("| | ms / step (median) | ms / step (fastest) | CPU s / step | peak RSS MB |")
print("|---|---|---|---|---|")
for name, runs in (("llm-from-scratch", ours), ("PyTorch eager (book's DPO code)", torch)):
    print(f"| {name} | {1e3 * med(runs, 'step_s_median'):.0f} | {1e3 * min(r['step_s_best'] for r in runs):.0f} | "
          f"{med(runs, 'cpu_s_median'):.2f} | {med(runs, 'peak_rss_mb'):.0f} |")
print()
print(f"time per step ratio (ours / PyTorch), medians: {med(ours, 'step_s_median') / med(torch, 'step_s_median'):.3f}")
best = lambda runs: min(r["step_s_best"] for r in runs)
print(f"time per step ratio (ours / PyTorch), fastest steps: {best(ours) / best(torch):.3f}")
print(f"CPU seconds per step ratio (ours / PyTorch; less sensitive than the wall time to other processes): "
      f"{med(ours, 'cpu_s_median') / med(torch, 'cpu_s_median'):.3f}")
print(f"peak RSS ratio (ours / PyTorch): {med(ours, 'peak_rss_mb') / med(torch, 'peak_rss_mb'):.3f}")
if rounds > 1:
    for r, (o, t) in enumerate(zip(ours, torch), 1):
        print(f"round {r}: time per step ratio {o['step_s_median'] / t['step_s_median']:.3f}, CPU s ratio {o['cpu_s_median'] / t['cpu_s_median']:.3f}")
o, t = ours[0], torch[0]
print(f"{o['config']}, batch {o['batch_size']} x {o['num_tokens']} tokens (chosen and rejected), {o['threads']} threads, "
      f"{o['device']}; median of {o['steps']} steps after {o['warmup']} warm-up, {rounds} round(s); "
      f"load average {os.getloadavg()[0]:.2f}")
print(f"losses: ours {[round(x, 6) for x in o['losses']]}, PyTorch {[round(x, 6) for x in t['losses']]}")
PY
