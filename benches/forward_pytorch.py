"""PyTorch eager forward-pass throughput of the book's GPT model: the reference for `llm bench forward`.

Same model (tests/fixtures/gpt_pytorch.py), same shapes, fp32, eval mode, torch.no_grad(), the
same thread count and the same warm-up / alternating / median timing as the Rust command.
Prints one JSON line with tokens/s for the explicit attention steps and for
F.scaled_dot_product_attention.

    python benches/forward_pytorch.py --config gpt2-small --context-length 256 --batch-size 2
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from gpt_pytorch import GPTModel  # noqa: E402

BASE = {"vocab_size": 50257, "context_length": 1024, "drop_rate": 0.1, "qkv_bias": False}
PRESETS = {
    "gpt2-small": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
    "tiny": {"emb_dim": 128, "n_layers": 2, "n_heads": 4, "context_length": 128},
}
ALIASES = {"124M": "gpt2-small", "355M": "gpt2-medium", "774M": "gpt2-large", "1558M": "gpt2-xl"}


def config_and_device(args):
    """The book's config for --config, checked against --context-length; --threads applied; the device.

    Shared with benches/train_pytorch.py."""
    name = ALIASES.get(args.config, args.config)
    if name not in PRESETS:
        sys.exit(f"unknown config {args.config!r} (known: {', '.join(PRESETS)})")
    cfg = {**BASE, **PRESETS[name]}
    if not 1 <= args.context_length <= cfg["context_length"]:
        sys.exit(f"--context-length must be in 1..={cfg['context_length']}")
    if args.threads:
        torch.set_num_threads(args.threads)
    return cfg, torch.device("cuda" if torch.cuda.is_available() else "cpu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="gpt2-small")
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()

    cfg, device = config_and_device(args)

    torch.manual_seed(args.seed)
    model = GPTModel(cfg).to(device).eval()
    ids = torch.randint(0, cfg["vocab_size"], (args.batch_size, args.context_length), device=device)

    def one_pass(sdpa):
        model.set_sdpa(sdpa)
        start = time.perf_counter()
        logits = model(ids)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        del logits
        return elapsed

    with torch.no_grad():
        for _ in range(args.warmup):
            one_pass(False)
            one_pass(True)
        explicit, sdpa = [], []
        for _ in range(args.runs):
            explicit.append(one_pass(False))
            sdpa.append(one_pass(True))
    explicit_best, sdpa_best = min(explicit), min(sdpa)
    explicit, sdpa = statistics.median(explicit), statistics.median(sdpa)
    tokens = args.batch_size * args.context_length
    print(json.dumps({
        "bench": "forward",
        "implementation": f"pytorch-eager {torch.__version__}",
        "config": args.config,
        "context_length": args.context_length,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "device": device.type,
        "warmup": args.warmup,
        "runs": args.runs,
        "explicit_ms": explicit * 1e3,
        "sdpa_ms": sdpa * 1e3,
        "explicit_best_ms": explicit_best * 1e3,
        "sdpa_best_ms": sdpa_best * 1e3,
        "explicit_tokens_per_s": tokens / explicit,
        "sdpa_tokens_per_s": tokens / sdpa,
    }))


if __name__ == "__main__":
    main()
