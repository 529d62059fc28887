"""PyTorch eager fine-tuning-step throughput of the book's chapter 6 classifier: the reference for
`llm bench finetune-spam`.

The book's model (tests/fixtures/gpt_pytorch.py) with GPT-2 small's shape and random weights,
dropout 0 as in chapter 6, and the book's surgery: every parameter frozen, `out_head` replaced by
`Linear(emb_dim, 2)`, the last transformer block and `final_norm` unfrozen. One step is the
book's `train_classifier_simple` body: `optimizer.zero_grad()`, `model(x)[:, -1, :]`,
cross-entropy, `loss.backward()`, `optimizer.step()` with `torch.optim.AdamW(lr=5e-5,
weight_decay=0.1)`. Same shapes, thread count, warm-up and median timing as the Rust command;
run it as its own process so that its peak resident memory (VmHWM) is its own. Prints one JSON
line with "impl": "pytorch".

    python benches/finetune_spam_pytorch.py --config gpt2-small --batch-size 8 --max-length 120 --steps 5
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
from forward_pytorch import config_and_device  # noqa: E402
from gpt_pytorch import GPTModel  # noqa: E402
from train_pytorch import cpu_seconds, peak_rss_mb  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="gpt2-small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=120)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    args.context_length = args.max_length  # what config_and_device checks

    cfg, device = config_and_device(args)
    cfg["drop_rate"] = 0.0
    torch.manual_seed(args.seed)
    model = GPTModel(cfg)
    for param in model.parameters():
        param.requires_grad = False
    model.out_head = torch.nn.Linear(in_features=cfg["emb_dim"], out_features=2)
    for param in model.trf_blocks[-1].parameters():
        param.requires_grad = True
    for param in model.final_norm.parameters():
        param.requires_grad = True
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    input_batch = torch.randint(0, cfg["vocab_size"], (args.batch_size, args.max_length), device=device)
    target_batch = torch.randint(0, 2, (args.batch_size,), device=device)

    losses, times, cpu_s = [], [], []
    for step in range(args.warmup + args.steps):
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        optimizer.zero_grad()
        logits = model(input_batch)[:, -1, :]
        loss = torch.nn.functional.cross_entropy(logits, target_batch)
        loss.backward()
        optimizer.step()
        loss = loss.item()  # waits for the device
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        losses.append(loss)
        if step >= args.warmup:
            times.append(elapsed)
            cpu_s.append(cpu)
    step_s = statistics.median(times)
    print(json.dumps({
        "bench": "finetune-spam",
        "impl": "pytorch",
        "torch": torch.__version__,
        "config": args.config,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "threads": torch.get_num_threads(),
        "device": device.type,
        "forward": "full",
        "warmup": args.warmup,
        "steps": args.steps,
        "step_s_median": step_s,
        "examples_per_s": args.batch_size / step_s,
        "step_s_best": min(times),
        "examples_per_s_best": args.batch_size / min(times),
        "cpu_s_median": statistics.median(cpu_s),
        "peak_rss_mb": peak_rss_mb(),
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "losses": losses,
    }))


if __name__ == "__main__":
    main()
