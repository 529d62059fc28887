"""PyTorch eager training-step throughput of the book's GPT model: the reference for `llm bench train`.

Same model (tests/fixtures/gpt_pytorch.py), same shapes, fp32, training mode (dropout on),
torch.optim.AdamW(lr=4e-4, weight_decay=0.1) with its default implementation (on the CPU the
single-tensor loop), the same thread count, warm-up and median timing, the same matmul
measurement for the model-FLOPs utilisation. Run it as its own process, so that its peak
resident memory (VmHWM) is its own. Prints one JSON line with "impl": "pytorch".

    python benches/train_pytorch.py --config gpt2-small --batch-size 2 --context-length 256 --steps 5
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
from forward_pytorch import config_and_device  # noqa: E402
from gpt_pytorch import GPTModel  # noqa: E402


def peak_rss_mb():
    """VmHWM of this process in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_seconds():
    """CPU seconds (user + system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def matmul_gflops(device, n):
    """Median of 5 fp32 products of two n x n matrices after one warm-up, in GFLOP/s."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    times = []
    for i in range(6):
        start = time.perf_counter()
        c = a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        del c
        if i > 0:
            times.append(elapsed)
    return 2 * n**3 / statistics.median(times) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="gpt2-small")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sdpa", action="store_true")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args()

    cfg, device = config_and_device(args)
    gflops = matmul_gflops(device, args.matmul_size)

    torch.manual_seed(args.seed)
    model = GPTModel(cfg).to(device).train()
    model.set_sdpa(args.sdpa)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    shape = (args.batch_size, args.context_length)
    input_batch = torch.randint(0, cfg["vocab_size"], shape, device=device)
    target_batch = torch.randint(0, cfg["vocab_size"], shape, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    losses = []
    # Seconds per timed step: whole step, forward + loss, backward, optimizer (zero_grad + step).
    times, forward_s, backward_s, optimizer_s, cpu_s = [], [], [], [], []
    for step in range(args.warmup + args.steps):
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        optimizer.zero_grad()
        sync()
        t_zero = time.perf_counter() - start
        logits = model(input_batch)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())
        sync()
        t_forward = time.perf_counter() - start
        loss.backward()
        sync()
        t_backward = time.perf_counter() - start
        optimizer.step()
        loss = loss.item()  # waits for the device
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        losses.append(loss)
        if step >= args.warmup:
            times.append(elapsed)
            cpu_s.append(cpu)
            forward_s.append(t_forward - t_zero)
            backward_s.append(t_backward - t_forward)
            optimizer_s.append(t_zero + elapsed - t_backward)
    step_s = statistics.median(times)
    tokens_per_s = args.batch_size * args.context_length / step_s
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "bench": "train",
        "impl": "pytorch",
        "torch": torch.__version__,
        "config": args.config,
        "batch_size": args.batch_size,
        "context_length": args.context_length,
        "threads": torch.get_num_threads(),
        "device": device.type,
        "attention": "sdpa" if args.sdpa else "explicit",
        "warmup": args.warmup,
        "steps": args.steps,
        "step_s_median": step_s,
        "forward_s": statistics.median(forward_s),
        "backward_s": statistics.median(backward_s),
        "optimizer_s": statistics.median(optimizer_s),
        "tokens_per_s": tokens_per_s,
        "step_s_best": min(times),
        "tokens_per_s_best": args.batch_size * args.context_length / min(times),
        "cpu_s_median": statistics.median(cpu_s),
        "peak_rss_mb": peak_rss_mb(),
        "params": params,
        "matmul_gflops": gflops,
        "mfu": 6 * params * tokens_per_s / (gflops * 1e9),
        "losses": losses,
    }))


if __name__ == "__main__":
    main()
