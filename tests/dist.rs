//! Process groups on PyTorch's c10d through `util::dist` (feature `dist`): two processes on
//! localhost, as `torchrun --nproc-per-node 2` starts them. The test binary starts itself twice
//! more, running only `worker` with `RANK`/`WORLD_SIZE`/`MASTER_*` set and a scenario in
//! `LLM_DIST_SCENARIO`; each worker checks its own results and exits non-zero on a failure.
//!
//! Run: `cargo test --features dist --test dist -- --nocapture`.
#![cfg(feature = "dist")]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use llm_from_scratch::util::dist::{Backend, ProcessGroup, ReduceOp};
use tch::{Device, Kind, Tensor};

const SCENARIO: &str = "LLM_DIST_SCENARIO";

/// A TCP port free right now on localhost (the OS picks it).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// Starts `world_size` workers of `scenario` and waits for them all: (rank, output) pairs.
fn launch(scenario: &str, world_size: usize) -> Vec<(usize, Output)> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let port = free_port().to_string();
    let children: Vec<_> = (0..world_size)
        .map(|rank| {
            let child = Command::new(&exe)
                .args(["worker", "--exact", "--nocapture", "--test-threads=1"])
                .env(SCENARIO, scenario)
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", world_size.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker");
            (rank, child)
        })
        .collect();
    children.into_iter().map(|(rank, c)| (rank, c.wait_with_output().expect("worker output"))).collect()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The per-process side; does nothing unless started by [`launch`].
#[test]
fn worker() {
    let Ok(scenario) = std::env::var(SCENARIO) else { return };
    let timeout = if scenario == "stalled" { Duration::from_secs(3) } else { Duration::from_secs(30) };
    let pg = ProcessGroup::from_env(Backend::Gloo, timeout).expect("join the group");
    let (rank, world) = (pg.rank, pg.world_size);
    let opts = (Kind::Float, Device::Cpu);
    match scenario.as_str() {
        "collectives" => {
            // Two tensors of different shapes, reduced as one buffer: rank r holds r+1 and 10(r+1).
            let r = rank as f64 + 1.0;
            let mut ts = vec![Tensor::full([2, 3], r, opts), Tensor::full([4], 10.0 * r, opts)];
            pg.all_reduce(&mut ts, ReduceOp::Sum).expect("all_reduce sum");
            let total: f64 = (1..=world).map(|r| r as f64).sum();
            assert_eq!(ts[0], Tensor::full([2, 3], total, opts), "sum of the first tensor");
            assert_eq!(ts[1], Tensor::full([4], 10.0 * total, opts), "sum of the second tensor");
            let mut avg = vec![Tensor::full([5], r, opts)];
            pg.all_reduce(&mut avg, ReduceOp::Avg).expect("all_reduce avg");
            assert_eq!(avg[0], Tensor::full([5], total / world as f64, opts), "mean over the ranks");
            // A non-contiguous tensor (a transpose) goes through the flat buffer and back.
            let mut tr = vec![Tensor::arange(6, opts).view([2, 3]).tr() * r];
            pg.all_reduce(&mut tr, ReduceOp::Sum).expect("all_reduce of a transposed tensor");
            assert_eq!(tr[0], Tensor::arange(6, opts).view([2, 3]).tr() * total, "transposed sum");
            // Broadcast from the last rank: everyone ends with its values.
            let root = world - 1;
            let mut b = vec![Tensor::full([3], rank as f64, opts), Tensor::full([1], -(rank as f64), opts)];
            pg.broadcast(&mut b, root).expect("broadcast");
            assert_eq!(b[0], Tensor::full([3], root as f64, opts), "broadcast first tensor");
            assert_eq!(b[1], Tensor::full([1], -(root as f64), opts), "broadcast second tensor");
            // Mismatched dtypes are an error, not a crash.
            let mut mixed = vec![Tensor::zeros([1], opts), Tensor::zeros([1], (Kind::Int64, Device::Cpu))];
            let e = pg.all_reduce(&mut mixed, ReduceOp::Sum).expect_err("mixed dtypes must fail");
            assert!(e.to_string().contains("dtype"), "the error names the dtype: {e}");
            pg.barrier().expect("barrier");
            println!("rank {rank}: collectives ok");
        }
        "killed" => {
            let mut t = vec![Tensor::ones([4], opts)];
            pg.all_reduce(&mut t, ReduceOp::Sum).expect("first all_reduce");
            if rank == 1 {
                // Dies without leaving the group, as a crashed or killed worker does.
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(500));
            let start = Instant::now();
            let e = pg.all_reduce(&mut t, ReduceOp::Sum).expect_err("all_reduce without rank 1 must fail");
            println!("rank {rank}: after {:.2?}: {e}", start.elapsed());
        }
        "stalled" => {
            if rank == 1 {
                // Alive but never joining the collective (a hung worker): rank 0 times out.
                std::thread::sleep(Duration::from_secs(8));
                return;
            }
            let mut t = vec![Tensor::ones([4], opts)];
            let start = Instant::now();
            let e = pg.all_reduce(&mut t, ReduceOp::Sum).expect_err("all_reduce without rank 1 must fail");
            println!("rank {rank}: after {:.2?}: {e}", start.elapsed());
            drop(pg);
            println!("rank {rank}: left the group after {:.2?}", start.elapsed());
        }
        "ddp" => {
            // Data-parallel SGD as DDP does it: rank 0's initial weights broadcast to all, each
            // rank's gradients from its half of the batch, averaged, then the same step on every
            // rank. It must match one process stepping on the whole batch.
            let (x, y) = ddp_batch();
            let half = x.size()[0] / world as i64;
            let xs = x.narrow(0, rank as i64 * half, half);
            let ys = y.narrow(0, rank as i64 * half, half);
            tch::manual_seed(100 + rank as i64); // different initial weights on each rank
            let vs = tch::nn::VarStore::new(Device::Cpu);
            let lin = tch::nn::linear(vs.root(), 4, 2, Default::default());
            let mut params = vs.trainable_variables();
            pg.broadcast(&mut params, 0).expect("broadcast the initial weights (leaf tensors that require grad)");
            let lin_init = lin.ws.detach().copy();
            for _ in 0..DDP_STEPS {
                params.iter_mut().for_each(Tensor::zero_grad);
                xs.apply(&lin).mse_loss(&ys, tch::Reduction::Mean).backward();
                let mut grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
                pg.all_reduce(&mut grads, ReduceOp::Avg).expect("average the gradients");
                tch::no_grad(|| {
                    for (p, g) in params.iter_mut().zip(&grads) {
                        let _ = p.f_sub_(&(g * DDP_LR)).expect("sgd step");
                    }
                });
            }
            // One process, the whole batch, rank 0's initial weights.
            tch::manual_seed(100);
            let vs1 = tch::nn::VarStore::new(Device::Cpu);
            let lin1 = tch::nn::linear(vs1.root(), 4, 2, Default::default());
            for _ in 0..DDP_STEPS {
                vs1.trainable_variables().iter_mut().for_each(Tensor::zero_grad);
                x.apply(&lin1).mse_loss(&y, tch::Reduction::Mean).backward();
                tch::no_grad(|| {
                    for mut p in vs1.trainable_variables() {
                        let g = p.grad();
                        let _ = p.f_sub_(&(g * DDP_LR)).expect("sgd step");
                    }
                });
            }
            let diff = (&lin.ws - &lin1.ws).abs().max().double_value(&[])
                .max((lin.bs.as_ref().unwrap() - lin1.bs.as_ref().unwrap()).abs().max().double_value(&[]));
            let moved = (&lin.ws - &lin_init).abs().max().double_value(&[]);
            assert!(moved > 1e-3, "rank {rank}: the steps changed the weights (by at most {moved:e})");
            assert!(diff < 1e-6, "rank {rank}: data-parallel weights differ from one process's by {diff:e}");
            println!("rank {rank}: ddp ok (max difference from one process {diff:e}; weights moved by up to {moved:.4})");
        }
        other => panic!("unknown scenario {other}"),
    }
}

const DDP_STEPS: usize = 3;
const DDP_LR: f64 = 0.1;

/// 8 examples of a 4 -> 2 regression, the same on every rank (each takes its half).
fn ddp_batch() -> (Tensor, Tensor) {
    let x = (Tensor::arange(32, (Kind::Float, Device::Cpu)).view([8, 4]) / 10.0).sin(); // [8, 4]
    let y = Tensor::stack(&[x.sum_dim_intlist(1, false, Kind::Float), x.select(1, 0) * 2.0], 1); // [8, 2]
    (x, y)
}

#[test]
fn data_parallel_sgd_matches_one_process() {
    for (rank, out) in launch("ddp", 2) {
        assert!(out.status.success(), "rank {rank} failed:\n{}", text(&out));
        assert!(text(&out).contains(&format!("rank {rank}: ddp ok")), "rank {rank}:\n{}", text(&out));
        println!("{}", text(&out).lines().find(|l| l.contains("ddp ok")).unwrap_or_default());
    }
}

#[test]
fn all_reduce_broadcast_barrier_across_two_processes() {
    for (rank, out) in launch("collectives", 2) {
        assert!(out.status.success(), "rank {rank} failed:\n{}", text(&out));
        assert!(text(&out).contains(&format!("rank {rank}: collectives ok")), "rank {rank}:\n{}", text(&out));
    }
}

#[test]
fn a_killed_worker_is_an_error_on_the_others() {
    let outs = launch("killed", 2);
    let (_, r0) = &outs[0];
    println!("{}", text(r0));
    assert!(r0.status.success(), "rank 0 must get an error, not crash or hang:\n{}", text(r0));
    assert!(text(r0).contains("rank 0: after"), "rank 0 reports the error:\n{}", text(r0));
    assert!(!outs[1].1.status.success(), "rank 1 aborted");
}

#[test]
fn a_stalled_worker_is_a_timeout_on_the_others() {
    let outs = launch("stalled", 2);
    let (_, r0) = &outs[0];
    println!("{}", text(r0));
    assert!(r0.status.success(), "rank 0 must get an error, not crash or hang:\n{}", text(r0));
    assert!(text(r0).contains("rank 0: left the group"), "rank 0 reports the error and leaves:\n{}", text(r0));
}

#[test]
fn a_missing_rank_is_an_init_timeout() {
    let port = free_port();
    let start = Instant::now();
    let e = ProcessGroup::new(Backend::Gloo, "127.0.0.1", port, 0, 2, 0, Duration::from_secs(2))
        .expect_err("rank 1 never joins");
    println!("init without rank 1, after {:.2?}: {e}", start.elapsed());
    assert!(e.to_string().starts_with("distributed init:"), "an init error: {e}");
}

#[test]
fn nccl_without_a_gpu_is_an_error() {
    if !llm_from_scratch::util::dist::has_nccl() || tch::Cuda::device_count() > 0 {
        println!("skipped: this build has no NCCL, or a GPU is present");
        return;
    }
    let e = ProcessGroup::new(Backend::Nccl, "127.0.0.1", free_port(), 0, 1, 0, Duration::from_secs(5))
        .expect_err("NCCL needs a GPU");
    println!("NCCL without a GPU: {e}");
    assert!(e.to_string().starts_with("distributed init:"), "an init error, not a crash: {e}");
}

/// The venv's Python (scripts/env.sh puts it first on PATH), or `python3`.
fn python() -> String {
    std::env::var("LLM_FS_VENV").map_or_else(|_| "python3".to_string(), |v| format!("{v}/bin/python"))
}

/// Rank 0 in Rust, rank 1 in Python's `torch.distributed` (Gloo): the same engine and protocol.
#[test]
fn a_python_rank_joins_a_rust_rank() {
    let port = free_port();
    let script = r#"
import os, torch, torch.distributed as dist
dist.init_process_group("gloo", init_method="env://")
t = torch.full((3,), 5.0)
dist.all_reduce(t)
b = torch.zeros(2)
dist.broadcast(b, src=0)
dist.barrier()
print("python:", t.tolist(), b.tolist(), flush=True)
dist.destroy_process_group()
"#;
    let py = Command::new(python())
        .args(["-c", script])
        .env("RANK", "1")
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    let opts = (Kind::Float, Device::Cpu);
    let result = (|| {
        let pg = ProcessGroup::new(Backend::Gloo, "127.0.0.1", port, 0, 2, 0, Duration::from_secs(60))?;
        let mut t = vec![Tensor::full([3], 2.0, opts)];
        pg.all_reduce(&mut t, ReduceOp::Sum)?;
        let mut b = vec![Tensor::from_slice(&[1.5f32, -2.0])];
        pg.broadcast(&mut b, 0)?;
        pg.barrier()?;
        Ok::<_, llm_from_scratch::error::Error>(t.remove(0))
    })();
    let out = py.wait_with_output().expect("python output");
    let t = result.unwrap_or_else(|e| panic!("rust rank 0: {e}\npython:\n{}", text(&out)));
    assert_eq!(t, Tensor::full([3], 7.0, opts), "2 (Rust) + 5 (Python)");
    assert!(out.status.success(), "python rank 1 failed:\n{}", text(&out));
    assert!(text(&out).contains("python: [7.0, 7.0, 7.0] [1.5, -2.0]"), "python's view:\n{}", text(&out));
}
