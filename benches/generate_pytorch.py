"""Greedy generation tokens/s in PyTorch: the references for `llm bench generate`.

Implementations (--impl), all with random weights of the same config, fp32 or bf16 weights,
greedy, exactly --max-new-tokens new tokens after a --prompt-tokens prompt of random ids:

    hf          Hugging Face `transformers` GPT2LMHeadModel.generate(use_cache=True, do_sample=False)
    book        the book's cached GPT model (ch04/03_kv-cache, rewritten here on the book's
                GPTModel of tests/fixtures/gpt_pytorch.py): keys and values concatenated per
                layer, positions continuing from the cache, one new token fed per step
    book-nocache  the same model without the cache (chapter 4's generate_text_simple)

Like the Rust command, it also times one pass of F.linear over a single row through every weight
matrix of the model (the weight-streaming limit of decoding one sequence), in the same process,
and prints one JSON line.

    python benches/generate_pytorch.py --impl hf --config gpt2-small --prompt-tokens 4 --max-new-tokens 200
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from forward_pytorch import ALIASES, BASE, PRESETS
from gpt_pytorch import GPTModel  # noqa: E402  (forward_pytorch puts tests/fixtures on the path)


# ---- The book's KV cache (ch04/03_kv-cache), on the fixture's modules ------------------------------


class KVCache:
    """Keys and values per layer, [b, num_heads, num_tokens, head_dim], and the next position."""

    def __init__(self, n_layers):
        self.keys = [None] * n_layers
        self.values = [None] * n_layers
        self.pos = 0

    def reset(self):
        self.__init__(len(self.keys))


def attention_cached(att, x, cache, layer):
    """MultiHeadAttention.forward with use_cache=True: the new positions' keys and values are
    appended to the cache, and each new query attends to everything cached up to itself."""
    b, n, _ = x.shape

    def heads(t):
        return t.view(b, n, att.num_heads, att.head_dim).transpose(1, 2)

    k_new, v_new, queries = heads(att.W_key(x)), heads(att.W_value(x)), heads(att.W_query(x))
    if cache.keys[layer] is None:
        cache.keys[layer], cache.values[layer] = k_new, v_new
    else:
        cache.keys[layer] = torch.cat([cache.keys[layer], k_new], dim=2)
        cache.values[layer] = torch.cat([cache.values[layer], v_new], dim=2)
    keys, values = cache.keys[layer], cache.values[layer]
    scores = queries @ keys.transpose(2, 3)
    num_k = keys.shape[2]
    mask = att.mask.bool()[cache.pos : cache.pos + n, :num_k]  # the rows of the new positions
    scores.masked_fill_(mask, -torch.inf)
    weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
    context = (weights @ values).transpose(1, 2).contiguous().view(b, n, att.d_out)
    return att.out_proj(context)


def forward_cached(model, ids, cache):
    """GPTModel.forward with use_cache=True: positions continue from cache.pos."""
    n = ids.shape[1]
    pos = model.pos_emb(torch.arange(cache.pos, cache.pos + n, device=ids.device))
    x = model.tok_emb(ids) + pos
    for layer, block in enumerate(model.trf_blocks):
        x = x + attention_cached(block.att, block.norm1(x), cache, layer)
        x = x + block.ff(block.norm2(x))
    cache.pos += n
    return model.out_head(model.final_norm(x))


def generate_text_simple_cached(model, idx, max_new_tokens, cache):
    """Greedy generation feeding the prompt once, then each new token."""
    cache.reset()
    logits = forward_cached(model, idx, cache)
    for step in range(max_new_tokens):
        next_idx = logits[:, -1].argmax(dim=-1, keepdim=True)
        idx = torch.cat([idx, next_idx], dim=1)
        if step + 1 < max_new_tokens:
            logits = forward_cached(model, next_idx, cache)
    return idx


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Chapter 4's loop: the whole (cropped) sequence for every token."""
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_size:])
        idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


# ---- The bench -----------------------------------------------------------------------------------


def book_config(name):
    name = ALIASES.get(name, name)
    if name not in PRESETS:
        raise SystemExit(f"unknown config {name!r} (known: {', '.join(PRESETS)})")
    return {**BASE, **PRESETS[name]}


def build(impl, cfg, dtype):
    """The model and a function (prompt, new_tokens) -> ids, plus the weight matrices per token."""
    if impl == "hf":
        from transformers import GPT2Config, GPT2LMHeadModel

        hf_cfg = GPT2Config(
            vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"], n_embd=cfg["emb_dim"],
            n_layer=cfg["n_layers"], n_head=cfg["n_heads"], activation_function="gelu_new",
        )
        model = GPT2LMHeadModel(hf_cfg).to(dtype).eval()
        mask = None

        def run(prompt, new_tokens):
            nonlocal mask
            mask = torch.ones_like(prompt)
            return model.generate(
                prompt, attention_mask=mask, use_cache=True, do_sample=False, min_new_tokens=new_tokens,
                max_new_tokens=new_tokens, pad_token_id=0,
            )

        # Conv1D weights are [in, out]; lm_head is tied to wte ([vocab, emb]).
        weights = [w.t() for blk in model.transformer.h for w in
                   (blk.attn.c_attn.weight, blk.attn.c_proj.weight, blk.mlp.c_fc.weight, blk.mlp.c_proj.weight)]
        weights.append(model.lm_head.weight)
        return run, weights

    model = GPTModel(cfg).to(dtype).eval()
    cache = KVCache(cfg["n_layers"])
    if impl == "book":
        def run(prompt, new_tokens):
            return generate_text_simple_cached(model, prompt, new_tokens, cache)
    else:
        def run(prompt, new_tokens):
            return generate_text_simple(model, prompt, new_tokens, cfg["context_length"])
    weights = [lin.weight for blk in model.trf_blocks for lin in
               (blk.att.W_query, blk.att.W_key, blk.att.W_value, blk.att.out_proj, blk.ff.layers[0], blk.ff.layers[2])]
    weights.append(model.out_head.weight)
    return run, weights


def stream_weights(weights):
    """One matrix-vector product per weight matrix (F.linear of one row), as a decoding step."""
    for w in weights:
        F.linear(torch.ones(1, w.shape[1], dtype=w.dtype), w)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["hf", "book", "book-nocache"], default="hf")
    parser.add_argument("--config", default="gpt2-small")
    parser.add_argument("--prompt-tokens", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--limit-passes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = book_config(args.config)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    torch.manual_seed(args.seed)
    with torch.no_grad():
        run, weights = build(args.impl, cfg, dtype)
        prompt = torch.randint(0, cfg["vocab_size"], (1, args.prompt_tokens))

        def timed_run(new_tokens):
            start = time.perf_counter()
            out = run(prompt, new_tokens)
            elapsed = time.perf_counter() - start
            assert out.shape[1] == args.prompt_tokens + new_tokens, out.shape
            return elapsed

        def weight_pass():
            start = time.perf_counter()
            stream_weights(weights)
            return time.perf_counter() - start

        timed_run(min(5, args.max_new_tokens))
        weight_pass()
        passes = [weight_pass() for _ in range((args.limit_passes + 1) // 2)]
        times = [timed_run(args.max_new_tokens) for _ in range(args.runs)]
        passes += [weight_pass() for _ in range(args.limit_passes // 2)]

    secs, pass_s = statistics.median(times), statistics.median(passes)
    tokens_per_s = args.max_new_tokens / secs
    impl_name = {"hf": "transformers " + __import__("transformers").__version__, "book": "book-kv-cache",
                 "book-nocache": "book-no-cache"}[args.impl]
    print(json.dumps({
        "bench": "generate",
        "implementation": f"pytorch {torch.__version__} {impl_name}",
        "config": args.config,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.max_new_tokens,
        "dtype": args.dtype,
        "kv_cache": args.impl != "book-nocache",
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "runs": args.runs,
        "seconds": secs,
        "tokens_per_s": tokens_per_s,
        "best_tokens_per_s": args.max_new_tokens / min(times),
        "weight_matrices_mb": sum(w.numel() * w.element_size() for w in weights) / 1e6,
        "weight_pass_ms": pass_s * 1e3,
        "weight_pass_best_ms": min(passes) * 1e3,
        "limit_tokens_per_s": 1 / pass_s,
        "fraction_of_limit": tokens_per_s / (1 / pass_s),
    }))


if __name__ == "__main__":
    main()
