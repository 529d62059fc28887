"""PyTorch eager DPO training step of the book's GPT model: the reference for `llm bench dpo-step`.

The book's DPO code (ch07/04_preference-tuning-with-dpo, dpo-from-scratch.ipynb): compute_logprobs,
compute_dpo_loss (from tests/fixtures/dpo_loss.py, the tests' reference) and compute_dpo_loss_batch, and the
training step of its train_model_dpo_simple (zero_grad, DPO loss of the batch, backward, AdamW
step). The policy is the book's GPT model (tests/fixtures/gpt_pytorch.py) with random weights
(seed 123) and dropout 0.0 (the chapter's config); the reference model is a copy of it in eval
mode under no_grad; AdamW lr 5e-6, weight decay 0.01 (the book's). The token batch is the one
`llm bench dpo-step --write-batch FILE` wrote (a real batch of the preference data: `chosen`,
`rejected` and their masks), so both sides time the same tokens. Run it as its own process, so
that its peak resident memory is its own. Prints one JSON line with "impl": "pytorch".

    python benches/dpo_pytorch.py --config gpt2-small --batch target/dpo-batch.safetensors --steps 3
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
from forward_pytorch import ALIASES, BASE, PRESETS  # noqa: E402
from dpo_loss import compute_dpo_loss, compute_logprobs  # noqa: E402  (the book's formulas, as the tests check them)
from gpt_pytorch import GPTModel  # noqa: E402
from train_pytorch import cpu_seconds, peak_rss_mb  # noqa: E402


def compute_dpo_loss_batch(batch, policy_model, reference_model, beta):
    """The book's compute_dpo_loss_batch: policy with gradients, reference under no_grad."""
    policy_chosen = compute_logprobs(policy_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])
    policy_rejected = compute_logprobs(policy_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])
    with torch.no_grad():
        ref_chosen = compute_logprobs(reference_model(batch["chosen"]), batch["chosen"], batch["chosen_mask"])
        ref_rejected = compute_logprobs(reference_model(batch["rejected"]), batch["rejected"], batch["rejected_mask"])
    return compute_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=beta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="gpt2-small")
    parser.add_argument("--batch", required=True, help="safetensors file written by `llm bench dpo-step --write-batch`")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()

    name = ALIASES.get(args.config, args.config)
    if name not in PRESETS:
        sys.exit(f"unknown config {args.config!r} (known: {', '.join(PRESETS)})")
    cfg = {**BASE, **PRESETS[name], "drop_rate": 0.0}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tensors = load_file(args.batch)
    batch = {
        "chosen": tensors["chosen"].long().to(device),
        "rejected": tensors["rejected"].long().to(device),
        "chosen_mask": tensors["chosen_mask"].bool().to(device),
        "rejected_mask": tensors["rejected_mask"].bool().to(device),
    }
    if batch["chosen"].shape[1] > cfg["context_length"]:
        sys.exit(f"the batch's {batch['chosen'].shape[1]} tokens exceed the context of {args.config}")

    torch.manual_seed(args.seed)
    policy_model = GPTModel(cfg).train()
    reference_model = GPTModel(cfg)
    reference_model.load_state_dict(policy_model.state_dict())
    policy_model.to(device)
    reference_model.to(device).eval()
    optimizer = torch.optim.AdamW(policy_model.parameters(), lr=5e-6, weight_decay=0.01)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    losses, margins, times, cpu_s = [], [], [], []
    for step in range(args.warmup + args.steps):
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        optimizer.zero_grad()
        loss, chosen_rewards, rejected_rewards = compute_dpo_loss_batch(batch, policy_model, reference_model, args.beta)
        loss.backward()
        optimizer.step()
        loss = loss.item()  # waits for the device
        sync()
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        losses.append(loss)
        margins.append((chosen_rewards - rejected_rewards).item())
        if step >= args.warmup:
            times.append(elapsed)
            cpu_s.append(cpu)
    b, t = batch["chosen"].shape
    print(json.dumps({
        "bench": "dpo-step",
        "impl": "pytorch",
        "torch": torch.__version__,
        "config": args.config,
        "batch_size": b,
        "num_tokens": t,
        "threads": torch.get_num_threads(),
        "device": device.type,
        "beta": args.beta,
        "warmup": args.warmup,
        "steps": args.steps,
        "step_s_median": statistics.median(times),
        "step_s_best": min(times),
        "cpu_s_median": statistics.median(cpu_s),
        "peak_rss_mb": peak_rss_mb(),
        "params": sum(p.numel() for p in policy_model.parameters()),
        "losses": losses,
        "reward_margins": margins,
    }))


if __name__ == "__main__":
    main()
