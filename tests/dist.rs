//! Process groups on PyTorch's c10d through `util::dist` (feature `dist`, on by default) and
//! data-parallel training (appendix A.9.3): two processes on localhost, as `torchrun
//! --nproc-per-node 2` starts them. The test binary starts itself twice more, running only
//! `worker` with `RANK`/`WORLD_SIZE`/`MASTER_*` set and a scenario in `LLM_DIST_SCENARIO`; each
//! worker checks its own results and exits non-zero on a failure. The `llm pretrain --nproc 2`
//! tests run the program, which starts its own workers. Every run has free ports and a guard
//! that kills it if it hangs.
//!
//! Run: `cargo test --test dist -- --nocapture`.
#![cfg(feature = "dist")]

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use llm_from_scratch::appendix_a::{DataLoader, DistributedSampler, NeuralNetwork, ToyDataset};
use llm_from_scratch::ch04::{GptConfig, GptModel};
use llm_from_scratch::ch05::{train_steps, AdamW, NextTokenTask, TrainSettings, TrainState};
use llm_from_scratch::dataloader::GptDatasetV1;
use llm_from_scratch::training::ddp::{DataParallelTask, DistributedDataParallel, DEFAULT_BUCKET_CAP_MB};
use llm_from_scratch::util::dist::{Backend, ProcessGroup, ReduceOp};
use tch::nn::{Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// How long a run of two processes may take before it counts as hung (and is killed).
const HANG_GUARD: Duration = Duration::from_secs(180);

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
    children.into_iter().map(|(rank, c)| (rank, wait_guarded(c, &format!("worker {rank} of {scenario}")))).collect()
}

/// Waits for `child` with its output, killing it (and failing) after [`HANG_GUARD`].
fn wait_guarded(child: Child, what: &str) -> Output {
    let pid = child.id();
    let (done, watch) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if watch.recv_timeout(HANG_GUARD).is_err() {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return true;
        }
        false
    });
    let out = child.wait_with_output().expect("the child's output");
    let _ = done.send(());
    assert!(!guard.join().unwrap(), "{what} hung: killed after {HANG_GUARD:?}\n{}", text(&out));
    out
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
        "toy" => toy_scenario(pg),
        "gpt" => gpt_scenario(pg),
        "ddp_killed" => {
            // Data-parallel training of the toy network; rank 1 dies after its second step.
            let (vs, model) = toy_model(123 + rank as i64);
            let ddp = DistributedDataParallel::new(pg, &vs, DEFAULT_BUCKET_CAP_MB).expect("wrap the model");
            let mut sgd = tch::nn::Sgd::default().build(&vs, 0.5).expect("sgd");
            let data = ToyDataset::toy_train();
            let start = Instant::now();
            for step in 0..1000 {
                if rank == 1 && step == 2 {
                    std::process::abort();
                }
                let loss = model.forward(&data.features).cross_entropy_for_logits(&data.labels);
                sgd.zero_grad();
                loss.backward();
                if let Err(e) = ddp.average_gradients() {
                    println!("rank {rank}: stopped at step {step} after {:.2?}: {e}", start.elapsed());
                    return;
                }
                sgd.step();
            }
            panic!("rank {rank}: 1000 steps without rank 1, and no error");
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

// ---------------------------------------------------------------------------------------------
// Data-parallel training (appendix A.9.3)

/// The largest difference between two VarStores' variables of the same names.
fn max_abs_diff(a: &tch::nn::VarStore, b: &tch::nn::VarStore) -> f64 {
    let b = b.variables();
    a.variables()
        .iter()
        .map(|(name, t)| (t - &b[name]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// Appendix A's toy network, built after `manual_seed(seed)`.
fn toy_model(seed: i64) -> (tch::nn::VarStore, NeuralNetwork) {
    tch::manual_seed(seed);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 2, 2);
    (vs, model)
}

/// Listing A.9's loop (SGD lr 0.5, cross-entropy) over `loader` for 3 epochs; with `ddp`, the
/// gradients are averaged after each backward pass.
fn train_toy(model: &NeuralNetwork, vs: &tch::nn::VarStore, loader: &DataLoader<ToyDataset>, ddp: Option<&DistributedDataParallel>) {
    let mut sgd = tch::nn::Sgd::default().build(vs, 0.5).expect("sgd");
    for epoch in 0..3 {
        for (features, labels) in loader.iter_epoch(epoch) {
            let loss = model.forward(&features).cross_entropy_for_logits(&labels);
            sgd.zero_grad();
            loss.backward();
            if let Some(ddp) = ddp {
                ddp.average_gradients().expect("average the gradients");
            }
            sgd.step();
        }
    }
}

/// The toy network on its 5 training points: two ranks with batch 1 (each its shard of the
/// seed-123 `DistributedSampler` order, `drop_last`) against one process with batch 2 on the same
/// order. Rank 1 starts from other weights: the broadcast must replace them with rank 0's.
fn toy_scenario(pg: ProcessGroup) {
    let (rank, world) = (pg.rank, pg.world_size);
    let data = ToyDataset::toy_train();
    let shard = |world, rank, batch| {
        let sampler = DistributedSampler::new(5, world, rank, true, 123, true).unwrap();
        DataLoader::new(data.clone(), batch, false, true, 0).unwrap().with_sampler(sampler).unwrap()
    };
    let (vs, model) = toy_model(123 + rank as i64);
    let ddp = DistributedDataParallel::new(pg, &vs, DEFAULT_BUCKET_CAP_MB).expect("wrap the model");
    let loader = shard(world, rank, 1);
    assert_eq!(loader.len(), 2, "2 of the 5 points per rank and epoch (drop_last)");
    train_toy(&model, &vs, &loader, Some(&ddp));

    let (vs1, model1) = toy_model(123);
    let init = vs1.variables()["layers.0.weight"].copy();
    train_toy(&model1, &vs1, &shard(1, 0, world), None);
    let moved = (&vs1.variables()["layers.0.weight"] - init).abs().max().double_value(&[]);
    let diff = max_abs_diff(&vs, &vs1);
    assert!(moved > 1e-3, "rank {rank}: training moved the weights (by up to {moved:e})");
    assert!(diff <= 1e-6, "rank {rank}: two processes differ from one by {diff:e}");
    println!("rank {rank}: toy ok (max difference from one process {diff:e}; weights moved by up to {moved:.4})");
}

/// A tiny GPT (config `tiny` without dropout) trained 4 steps by the library's loop with AdamW:
/// two ranks with batch 2 of 8-token windows against one process with batch 4 over the same
/// global batches; also the evaluations (averaged over the ranks) and the tokens counted.
fn gpt_scenario(pg: ProcessGroup) {
    let (rank, world) = (pg.rank, pg.world_size);
    let cfg = GptConfig { drop_rate: 0.0, ..GptConfig::tiny() };
    let ids: Vec<u32> = (0..400u32).map(|i| i * 7919 % 50257).collect();
    let (train_ids, val_ids) = ids.split_at(300);
    let tokenizer = common::gpt2();
    let settings = TrainSettings { max_steps: Some(4), sample_tokens: 0, ..TrainSettings::book(1, 2, 1, "") };
    let run = |world: usize, rank: usize, batch: usize, seed: i64, group: Option<ProcessGroup>| {
        tch::manual_seed(seed);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &cfg);
        let ddp = group.map(|g| DistributedDataParallel::new(g, &vs, 1.0).expect("wrap the model"));
        let train = GptDatasetV1::from_token_ids(train_ids, 8, 8).unwrap();
        let val = GptDatasetV1::from_token_ids(val_ids, 8, 8).unwrap();
        let (n, m) = (train.len(), val.len());
        let train = DataLoader::new(train, batch, false, true, 0).unwrap();
        let train = train.with_sampler(DistributedSampler::new(n, world, rank, true, 123, true).unwrap()).unwrap();
        let val = DataLoader::new(val, batch, false, false, 0).unwrap();
        let val = val.with_sampler(DistributedSampler::new(m, world, rank, false, 123, false).unwrap()).unwrap();
        let task = NextTokenTask::new(&model, tokenizer, Device::Cpu, cfg.context_length);
        let mut optimizer = AdamW::new(&vs, 4e-4, 0.1);
        let mut state = TrainState::default();
        let trained = match &ddp {
            Some(ddp) => train_steps(&DataParallelTask { task: &task, ddp }, &train, &val, &mut optimizer, &settings, &mut state, None, &mut |_| {}),
            None => train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, None, &mut |_| {}),
        };
        trained.expect("training");
        if let Some(ddp) = &ddp {
            assert!(ddp.buckets.len() > 1, "1 MiB buckets: several all-reduces ({} buckets)", ddp.buckets.len());
        }
        (vs, state)
    };
    let (vs, state) = run(world, rank, 2, 100 + rank as i64, Some(pg));
    let (vs1, state1) = run(1, 0, 2 * world, 100, None);
    let diff = max_abs_diff(&vs, &vs1);
    assert!(diff <= 1e-6, "rank {rank}: two processes differ from one by {diff:e}");
    assert_eq!((state.steps_done, state.tokens_seen), (4, 4 * 4 * 8), "4 steps of 4 windows of 8 tokens, counted for both ranks");
    assert_eq!((state.tokens_seen, &state.history.steps), (state1.tokens_seen, &state1.history.steps), "the same counts and evaluations");
    for (a, b) in state.history.train_losses.iter().chain(&state.history.val_losses).zip(state1.history.train_losses.iter().chain(&state1.history.val_losses)) {
        assert!((a - b).abs() <= 1e-5, "rank {rank}: averaged evaluation {a} vs one process's {b}");
    }
    println!("rank {rank}: gpt ok (max difference from one process {diff:e}; train losses {:?})", state.history.train_losses);
}

#[test]
fn toy_network_two_processes_match_one() {
    for (rank, out) in launch("toy", 2) {
        assert!(out.status.success(), "rank {rank} failed:\n{}", text(&out));
        assert!(text(&out).contains(&format!("rank {rank}: toy ok")), "rank {rank}:\n{}", text(&out));
        println!("{}", text(&out).lines().find(|l| l.contains("toy ok")).unwrap_or_default());
    }
}

#[test]
fn tiny_gpt_two_processes_match_one() {
    for (rank, out) in launch("gpt", 2) {
        assert!(out.status.success(), "rank {rank} failed:\n{}", text(&out));
        assert!(text(&out).contains(&format!("rank {rank}: gpt ok")), "rank {rank}:\n{}", text(&out));
        println!("{}", text(&out).lines().find(|l| l.contains("gpt ok")).unwrap_or_default());
    }
}

#[test]
fn a_killed_worker_stops_data_parallel_training_with_an_error() {
    let outs = launch("ddp_killed", 2);
    let (_, r0) = &outs[0];
    println!("{}", text(r0));
    assert!(r0.status.success(), "rank 0 must get an error, not crash or hang:\n{}", text(r0));
    assert!(text(r0).contains("rank 0: stopped at step 2"), "rank 0's third all-reduce fails:\n{}", text(r0));
    assert!(!outs[1].1.status.success(), "rank 1 aborted");
}

/// PyTorch's own `DistributedSampler` (tests/fixtures/distributed_sampler.py) for several
/// (n, world size, seed, epoch, shuffle, drop_last): every rank's indices, the same here, and
/// batched by `DataLoader::with_sampler` every example once per epoch across the ranks (the
/// padding being PyTorch's repeated indices).
#[test]
fn distributed_sampler_matches_pytorch() {
    let dir = common::fixture("distributed_sampler.py", &[], "distributed_sampler", "orders.json");
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(dir.join("orders.json")).unwrap()).unwrap();
    assert_eq!(cases.len(), 9, "the fixture's cases");
    for case in &cases {
        let get = |k: &str| case[k].as_u64().unwrap();
        let (n, world, seed, epoch) = (get("n") as usize, get("num_replicas") as usize, get("seed"), get("epoch"));
        let (shuffle, drop_last) = (case["shuffle"].as_bool().unwrap(), case["drop_last"].as_bool().unwrap());
        let torch: Vec<Vec<usize>> = serde_json::from_value(case["ranks"].clone()).unwrap();
        let mut seen = vec![0usize; n];
        for (rank, want) in torch.iter().enumerate() {
            let sampler = DistributedSampler::new(n, world, rank, shuffle, seed, drop_last).unwrap();
            assert_eq!(&sampler.indices(epoch), want, "rank {rank} of {world}, n {n}, seed {seed}, epoch {epoch}, shuffle {shuffle}, drop_last {drop_last}");
            // The loader yields those examples (ToyDataset labels = their indices).
            let data = ToyDataset::new(Tensor::zeros([n as i64, 1], (Kind::Float, Device::Cpu)), Tensor::arange(n as i64, (Kind::Int64, Device::Cpu))).unwrap();
            let loader = DataLoader::new(data, 2, false, false, 0).unwrap().with_sampler(sampler).unwrap();
            let labels: Vec<i64> = loader.iter_epoch(epoch).flat_map(|(_, y)| Vec::<i64>::try_from(y).unwrap()).collect();
            assert_eq!(labels, want.iter().map(|&i| i as i64).collect::<Vec<_>>(), "the loader's examples on rank {rank}");
            for &i in want {
                seen[i] += 1;
            }
        }
        let total: usize = seen.iter().sum();
        if n % world == 0 {
            assert!(seen.iter().all(|&c| c == 1), "n {n} divides by {world}: every example exactly once: {seen:?}");
        } else if drop_last {
            assert_eq!(total, n / world * world, "cut to a multiple of {world}");
            assert!(seen.iter().all(|&c| c <= 1), "no example twice");
        } else {
            assert_eq!(total, n.div_ceil(world) * world, "padded to a multiple of {world}");
            assert!(seen.iter().all(|&c| c >= 1), "every example at least once: {seen:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `llm pretrain --nproc 2`

/// A small GPT without dropout (so that batches split over processes give the same gradients):
/// its config file, and the first 3000 characters of the-verdict.
fn pretrain_inputs(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = serde_json::json!({"vocab_size": 50257, "context_length": 16, "emb_dim": 32, "n_heads": 2, "n_layers": 1, "drop_rate": 0.0, "qkv_bias": false});
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::write(dir.join("text.txt"), &common::text(&llm_from_scratch::data::THE_VERDICT)[..3000]).unwrap();
    (dir.join("config.json").display().to_string(), dir.join("text.txt").display().to_string())
}

/// `llm` with `args`, as `common::llm` runs it, not yet waited for.
fn llm_spawn(args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
    cmd.args(args).env_remove("RUST_BACKTRACE").env("OMP_NUM_THREADS", "1").stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(dir) = common::store().local_dir {
        cmd.env("LLM_DATA_DIR", dir);
    }
    cmd.spawn().expect("start llm")
}

fn tensors(dir: &Path) -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(dir.join("checkpoint.safetensors")).expect("read the checkpoint")
}

/// Two processes for 3 steps, resumed in one process to the end of the epoch (10 steps), against one
/// process with the same global batch (4) throughout: the same weights and AdamW state. Only
/// rank 0 prints.
#[test]
fn pretrain_nproc_2_resumes_in_one_process() {
    let dir = std::env::temp_dir().join(format!("llm-fs-dist-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (cfg, text_file) = pretrain_inputs(&dir);
    let (two, one) = (dir.join("two"), dir.join("one"));
    let common = ["--data", &text_file, "--config", &cfg, "--context-length", "16", "--eval-freq", "2", "--eval-iter", "1", "--epochs", "1"];
    let out = wait_guarded(llm_spawn(&[&["pretrain", "--nproc", "2", "--batch-size", "2", "--max-steps", "3", "--out", two.to_str().unwrap()][..], &common].concat()), "llm pretrain --nproc 2");
    let log = text(&out);
    println!("{log}");
    assert!(out.status.success(), "llm pretrain --nproc 2 failed:\n{log}");
    assert_eq!(log.matches("Ep 1 (Step 000000)").count(), 1, "rank 0 alone logs:\n{log}");
    assert!(!log.contains("[rank 1]"), "rank 1 prints nothing:\n{log}");
    assert!(log.contains("batches of 4 (2 processes x 2) x 16 tokens"), "the global batch:\n{log}");

    let resumed = common::llm_succeeds(&["pretrain", "--resume", two.to_str().unwrap()]);
    assert!(text(&resumed).contains("Ep 1 (Step 000004)"), "the evaluations continue:\n{}", text(&resumed));
    common::llm_succeeds(&[&["pretrain", "--batch-size", "4", "--out", one.to_str().unwrap()][..], &common].concat());
    let (a, b) = (tensors(&two), tensors(&one));
    assert_eq!(a.len(), b.len(), "the same tensors (model and AdamW)");
    let b: std::collections::HashMap<_, _> = b.into_iter().collect();
    let diff = a.iter().map(|(name, t)| (t - &b[name]).abs().max().double_value(&[])).fold(0.0, f64::max);
    println!("resumed two-process run vs one process: max difference {diff:e} over {} tensors", a.len());
    assert!(diff <= 1e-6, "the resumed run differs from the uninterrupted one by {diff:e}");
    let state = |d: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(d.join("checkpoint.json")).unwrap()).unwrap()["state"].clone();
    assert_eq!(state(&two)["steps_done"], state(&one)["steps_done"], "the same steps");
    assert_eq!(state(&two)["tokens_seen"], state(&one)["tokens_seen"], "the same tokens");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The pid of the child of `parent` whose environment has `RANK=rank`.
fn worker_pid(parent: u32, rank: usize) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()).find(|pid| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == format!("RANK={rank}").as_bytes()))
    })
}

/// SIGKILL to rank 1 while `llm pretrain --nproc 2` trains: the launcher stops rank 0 and fails,
/// naming rank 1.
#[test]
fn pretrain_nproc_2_fails_naming_a_killed_rank() {
    let dir = std::env::temp_dir().join(format!("llm-fs-dist-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (cfg, text_file) = pretrain_inputs(&dir);
    let out_dir = dir.join("run");
    let args = ["pretrain", "--nproc", "2", "--data", &text_file, "--config", &cfg, "--context-length", "16", "--batch-size", "2", "--eval-freq", "1", "--eval-iter", "1", "--epochs", "1000", "--out", out_dir.to_str().unwrap()];
    let mut child = llm_spawn(&args);
    // Wait for rank 0's first evaluation: both ranks are training.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("Ep 1 (Step 000000)") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "llm pretrain --nproc 2 ended before training");
    }
    let pid = worker_pid(child.id(), 1).expect("rank 1's process");
    let rank0 = worker_pid(child.id(), 0).expect("rank 0's process");
    // SAFETY: kill(2) of a process this test started (through llm).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let start = Instant::now();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let out = wait_guarded(child, "llm pretrain --nproc 2 after a kill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("after {:.2?}:\n{stderr}", start.elapsed());
    assert!(!out.status.success(), "the run fails");
    assert!(stderr.contains("error: rank 1 failed (signal: 9 (SIGKILL))"), "names the killed rank:\n{stderr}");
    assert!(!Path::new(&format!("/proc/{rank0}")).exists(), "rank 0 stopped (and was waited for)");
    std::fs::remove_dir_all(&dir).unwrap();
}
