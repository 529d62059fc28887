//! Data-parallel runs (appendix A.9.3): `llm pretrain --nproc N` starts N workers on this
//! machine as `torchrun --nproc-per-node N` does, and a worker joins its process group from
//! torchrun's variables.
//!
//! - The launcher runs this same program with the same arguments N times, each with `RANK`,
//!   `LOCAL_RANK`, `WORLD_SIZE`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` (and
//!   [`LAUNCHED`], so that the workers do not launch again). Rank 0 writes to this terminal; the
//!   other ranks' lines come prefixed with `[rank r]` (they print only errors). It waits for
//!   them all; when one fails it stops the others (SIGTERM, then SIGKILL after 5 s) and fails
//!   naming that rank, as torchrun does.
//! - With `--nnodes M --node-rank k` each machine runs its own launcher: ranks `k·N .. k·N+N-1`
//!   of `M·N`, rendezvous at `--master-addr`/`--master-port` (rank 0's machine).
//! - Without `--nproc`, a program started with `WORLD_SIZE` set (by torchrun, or by hand on
//!   several machines) is a worker: [`DistEnv::from_env`].

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Set by the launcher in its workers' environment.
pub const LAUNCHED: &str = "LLM_DIST_LAUNCHED";

/// This worker's place in a data-parallel run, from torchrun's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistEnv {
    pub rank: usize,
    pub world_size: usize,
    pub local_rank: usize,
}

impl DistEnv {
    /// `Some` when `WORLD_SIZE` is set (then `RANK` must be too; `LOCAL_RANK` defaults to it).
    pub fn from_env() -> Result<Option<Self>> {
        let var = |name: &str| -> Result<Option<usize>> {
            match std::env::var(name) {
                Ok(v) => Ok(Some(v.trim().parse().with_context(|| format!("{name}={v:?} is not a number"))?)),
                Err(_) => Ok(None),
            }
        };
        let Some(world_size) = var("WORLD_SIZE")? else { return Ok(None) };
        let rank = var("RANK")?.context("WORLD_SIZE is set but RANK is not (each process needs its rank)")?;
        if world_size == 0 || rank >= world_size {
            bail!("RANK={rank} is not in 0..WORLD_SIZE={world_size}");
        }
        Ok(Some(DistEnv { rank, world_size, local_rank: var("LOCAL_RANK")?.unwrap_or(rank) }))
    }
}

/// Where and how many workers `--nproc` starts.
#[derive(Debug, Clone)]
pub struct Launch {
    pub nproc: usize,
    pub nnodes: usize,
    pub node_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
}

impl Launch {
    /// From the flags: the address defaults to `MASTER_ADDR` or 127.0.0.1; the port to
    /// `MASTER_PORT`, else a free port on one machine, else torchrun's 29500.
    pub fn new(nproc: usize, nnodes: usize, node_rank: usize, master_addr: Option<String>, master_port: Option<u16>) -> Result<Self> {
        if nproc == 0 || nnodes == 0 || node_rank >= nnodes {
            bail!("--nproc and --nnodes must be at least 1 and --node-rank below --nnodes (got {nproc}, {nnodes}, {node_rank})");
        }
        let master_addr = master_addr.or_else(|| std::env::var("MASTER_ADDR").ok()).unwrap_or_else(|| "127.0.0.1".into());
        let env_port = std::env::var("MASTER_PORT").ok().map(|p| p.parse::<u16>().with_context(|| format!("MASTER_PORT={p:?}"))).transpose()?;
        let master_port = match master_port.or(env_port) {
            Some(port) => port,
            None if nnodes == 1 => free_port()?,
            None => 29500,
        };
        Ok(Launch { nproc, nnodes, node_rank, master_addr, master_port })
    }
}

/// A TCP port free right now on this machine (the OS picks it).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port for the rendezvous")?;
    Ok(listener.local_addr()?.port())
}

/// Copies `from` line by line to stderr with `[rank r] ` in front.
fn prefix_lines(rank: usize, from: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(|l| l.ok()) {
            let _ = writeln!(std::io::stderr(), "[rank {rank}] {line}");
        }
    })
}

/// Start the workers (this program, same arguments) and wait for them; see the module docs.
pub fn launch(l: &Launch) -> Result<()> {
    crate::interrupt::stop_on_signals(); // Ctrl-C reaches the workers too: wait for them to save
    let exe = std::env::current_exe().context("the path of this program")?;
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let world = l.nproc * l.nnodes;
    let first = l.node_rank * l.nproc;
    eprintln!(
        "starting {} workers: ranks {first}..={} of {world}, rendezvous at {}:{}",
        l.nproc,
        first + l.nproc - 1,
        l.master_addr,
        l.master_port
    );
    let mut children: Vec<(usize, Child)> = Vec::new();
    let mut printers = Vec::new();
    for local_rank in 0..l.nproc {
        let rank = first + local_rank;
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env(LAUNCHED, "1")
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local_rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_WORLD_SIZE", l.nproc.to_string())
            .env("MASTER_ADDR", &l.master_addr)
            .env("MASTER_PORT", l.master_port.to_string());
        if rank != 0 {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                stop_all(&mut children);
                return Err(e).with_context(|| format!("starting rank {rank}"));
            }
        };
        if rank != 0 {
            printers.push(prefix_lines(rank, child.stdout.take().expect("piped stdout")));
            printers.push(prefix_lines(rank, child.stderr.take().expect("piped stderr")));
        }
        children.push((rank, child));
    }
    // Poll every 20 ms; in a round where several fail, one killed by a signal comes first (the
    // others then failed because it was gone).
    let mut running: Vec<usize> = (0..children.len()).collect();
    let mut failed: Vec<(usize, String, bool)> = Vec::new();
    while failed.is_empty() && !running.is_empty() {
        std::thread::sleep(Duration::from_millis(20));
        running.retain(|&i| {
            let (rank, child) = &mut children[i];
            match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) if status.success() => false,
                Ok(Some(status)) => {
                    use std::os::unix::process::ExitStatusExt;
                    failed.push((*rank, status.to_string(), status.signal().is_some()));
                    false
                }
                Err(e) => {
                    failed.push((*rank, format!("cannot be waited for: {e}"), false));
                    false
                }
            }
        });
    }
    failed.sort_by_key(|(_, _, by_signal)| !by_signal);
    if !failed.is_empty() {
        stop_all(&mut children);
    }
    for p in printers {
        let _ = p.join();
    }
    match failed.split_first() {
        Some(((rank, status, _), others)) => {
            let also: String = others.iter().map(|(r, s, _)| format!("; rank {r} also failed ({s})")).collect();
            bail!("rank {rank} failed ({status}){also}; the other workers were stopped")
        }
        None => Ok(()),
    }
}

/// torchrun's way to end a job: SIGTERM to every worker still running, SIGKILL to those still
/// there 5 s later.
fn stop_all(children: &mut [(usize, Child)]) {
    for (_, child) in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: a plain kill(2) of our own child's pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (_, child) in children.iter_mut() {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}
