#!/usr/bin/env bash
# Greedy generation of one sequence (chapter 4's bonus, the KV cache), GPT-2 small shape with
# random weights: this crate (`llm bench generate`, with and without the cache) against Hugging
# Face `transformers` (`generate(use_cache=True)`) and the book's cached GPT code in PyTorch
# (benches/generate_pytorch.py), on the same libtorch, each in its own process, ROUNDS times.
# Every process also times one pass of matrix-vector products over all the model's weight
# matrices (decoding one sequence reads each weight once per token: the limit), and the summary
# gives the ratios measured side by side: ours with the cache against Hugging Face's and against
# that limit, and against ours without the cache.
#
#   scripts/bench_generate.sh                          # f32 and bf16, 4-token prompt, 200 new tokens
#   ROUNDS=2 THREADS=1 DTYPES=f32 scripts/bench_generate.sh
#   NO_CACHE=0 scripts/bench_generate.sh               # skip the slow runs without a cache
#   LLM=/tmp/llm scripts/bench_generate.sh             # a binary already built (nothing is built)
set -euo pipefail
# shellcheck source=scripts/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_setup "${PROFILE:-dev}"

CONFIG="${CONFIG:-gpt2-small}"
PROMPT="${PROMPT:-4}"
NEW="${NEW:-200}"
ROUNDS="${ROUNDS:-1}"
DTYPES="${DTYPES:-f32 bf16}"
NO_CACHE="${NO_CACHE:-1}"

common=(--config "$CONFIG" --prompt-tokens "$PROMPT" --max-new-tokens "$NEW" --threads "$THREADS")
echo "# $LLM bench generate ${common[*]} [--no-kv-cache] --dtype D"
echo "# python benches/generate_pytorch.py --impl hf|book ${common[*]} --dtype D"
for round in $(seq 1 "$ROUNDS"); do
    for dtype in $DTYPES; do
        "$LLM" bench generate "${common[@]}" --dtype "$dtype" | tee -a "$OUT/ours-$dtype.jsonl"
        python benches/generate_pytorch.py --impl hf "${common[@]}" --dtype "$dtype" | tee -a "$OUT/hf-$dtype.jsonl"
        python benches/generate_pytorch.py --impl book "${common[@]}" --dtype "$dtype" | tee -a "$OUT/book-$dtype.jsonl"
        if [ "$NO_CACHE" = 1 ]; then
            "$LLM" bench generate "${common[@]}" --dtype "$dtype" --no-kv-cache | tee -a "$OUT/ours-nocache-$dtype.jsonl"
        fi
    done
done

python - "$OUT" $DTYPES <<'PY'
import json, os, statistics, sys
out, dtypes = sys.argv[1], sys.argv[2:]
load = lambda name: [json.loads(l) for l in open(f"{out}/{name}.jsonl")] if os.path.exists(f"{out}/{name}.jsonl") else []
med = lambda rows, key: statistics.median(r[key] for r in rows)
print()
print("tokens/s (median over rounds); the limit is each process's own pass over the weights")
print()
print("| dtype | ours, cache | ours, no cache | Hugging Face | book's cached code | limit (ours) | ours / HF | ours / limit | HF / limit | book / limit | cache / no cache |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for d in dtypes:
    ours, nocache, hf, book = load(f"ours-{d}"), load(f"ours-nocache-{d}"), load(f"hf-{d}"), load(f"book-{d}")
    o, h, b = med(ours, "tokens_per_s"), med(hf, "tokens_per_s"), med(book, "tokens_per_s")
    n = med(nocache, "tokens_per_s") if nocache else float("nan")
    print(f"| {d} | {o:.2f} | {n:.2f} | {h:.2f} | {b:.2f} | {med(ours, 'limit_tokens_per_s'):.2f} | {o / h:.2f}x | "
          f"{med(ours, 'fraction_of_limit'):.0%} | {med(hf, 'fraction_of_limit'):.0%} | {med(book, 'fraction_of_limit'):.0%} | {o / n:.1f}x |")
    if len(ours) > 1:
        rounds = lambda rows: ", ".join("%.2f" % x["tokens_per_s"] for x in rows)
        ratios = ", ".join("%.2fx" % (a["tokens_per_s"] / b["tokens_per_s"]) for a, b in zip(ours, hf))
        print(f"| {d}, each round | {rounds(ours)} | {rounds(nocache)} | {rounds(hf)} | {rounds(book)} | | {ratios} | | | | |")
r = load(f"ours-{dtypes[0]}")[0]
print(f"\n{r['config']}, prompt {r['prompt_tokens']} tokens, {r['new_tokens']} new tokens (greedy), "
      f"{r['threads']} threads, device {r['device']}; {load(f'hf-{dtypes[0]}')[0]['implementation']}")
PY
