//! Process groups for multi-process training (book appendix A.13, "Training with multiple GPUs":
//! `torch.distributed.init_process_group`, the collectives under `DistributedDataParallel`).
//!
//! Only with the cargo feature `dist`. This is PyTorch's own engine, c10d, the one inside
//! libtorch: a TCP store on rank 0 for the rendezvous, then Gloo (CPU tensors) or NCCL (CUDA
//! tensors) for the collectives. Rust reaches it through a small C++ shim, `csrc/dist.cpp`,
//! compiled by `build.rs` (see `csrc/build_dist.rs` for what it needs).
//!
//! ```no_run
//! # use llm_from_scratch::util::dist::{Backend, ProcessGroup, ReduceOp};
//! # fn main() -> llm_from_scratch::error::Result<()> {
//! // Each process is started with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (as torchrun does).
//! let pg = ProcessGroup::from_env(Backend::Gloo, std::time::Duration::from_secs(60))?;
//! let mut grads = vec![tch::Tensor::ones([3], (tch::Kind::Float, tch::Device::Cpu))];
//! pg.all_reduce(&mut grads, ReduceOp::Avg)?; // the mean over all ranks, in place
//! # Ok(()) }
//! ```

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

use tch::Tensor;

use crate::error::{Error, Result};

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    // `*mut c_void` for each tensor: tch's `C_tensor` is libtorch's `at::Tensor`.
    extern "C" {
        pub fn llm_dist_free_error(e: *mut c_char);
        pub fn llm_dist_has_nccl() -> c_int;
        pub fn llm_dist_new(
            backend: c_int,
            addr: *const c_char,
            port: c_int,
            rank: c_int,
            world_size: c_int,
            local_rank: c_int,
            timeout_ms: i64,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn llm_dist_new_from_env(backend: c_int, timeout_ms: i64, out: *mut *mut c_void) -> *mut c_char;
        pub fn llm_dist_free(g: *mut c_void);
        pub fn llm_dist_all_reduce(g: *mut c_void, ts: *const *mut c_void, n: usize, op: c_int) -> *mut c_char;
        pub fn llm_dist_broadcast(g: *mut c_void, ts: *const *mut c_void, n: usize, root: c_int) -> *mut c_char;
        pub fn llm_dist_barrier(g: *mut c_void) -> *mut c_char;
    }
}

/// Which c10d backend carries the collectives (`init_process_group(backend=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors, over TCP.
    Gloo,
    /// NCCL: CUDA tensors; one process per GPU (`LOCAL_RANK` picks it).
    Nccl,
}

/// How [`ProcessGroup::all_reduce`] combines the ranks' tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// The element-wise sum over ranks (`dist.ReduceOp.SUM`).
    Sum,
    /// The sum divided by the world size: what DDP does to gradients.
    Avg,
}

/// Whether this build can create NCCL groups (build.rs found CUDA's and NCCL's headers).
pub fn has_nccl() -> bool {
    // SAFETY: a plain function without arguments.
    unsafe { ffi::llm_dist_has_nccl() != 0 }
}

/// One process's membership in a group of `world_size` processes (`dist.init_process_group`).
/// Every collective must be called by all ranks in the same order. Dropping it leaves the group.
#[derive(Debug)]
pub struct ProcessGroup {
    raw: *mut c_void,
    /// This process's rank, `0..world_size`.
    pub rank: usize,
    /// The number of processes.
    pub world_size: usize,
    /// The backend.
    pub backend: Backend,
}

// SAFETY: c10d backends are used from any thread (PyTorch's DDP calls them from autograd
// threads); a group's collectives must still be issued in the same order on all ranks.
unsafe impl Send for ProcessGroup {}

/// Turns the shim's error message (NULL on success) into a `Result`.
fn check(op: &'static str, e: *mut c_char) -> Result<()> {
    if e.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated string from malloc, freed here once.
    let reason = unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned();
    unsafe { ffi::llm_dist_free_error(e) };
    Err(Error::Distributed { op, reason })
}

fn backend_code(backend: Backend) -> c_int {
    match backend {
        Backend::Gloo => 0,
        Backend::Nccl => 1,
    }
}

fn timeout_ms(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

impl ProcessGroup {
    /// Joins the group described by torchrun's variables: `RANK`, `WORLD_SIZE`, `MASTER_ADDR`
    /// (default 127.0.0.1), `MASTER_PORT` (default 29500), `LOCAL_RANK` (default `RANK`: the
    /// CUDA device for NCCL). Blocks until all ranks have joined; `timeout` bounds that wait and
    /// every later collective.
    pub fn from_env(backend: Backend, timeout: Duration) -> Result<Self> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer.
        check("init", unsafe { ffi::llm_dist_new_from_env(backend_code(backend), timeout_ms(timeout), &mut raw) })?;
        let rank = std::env::var("RANK").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        let world_size = std::env::var("WORLD_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        Ok(ProcessGroup { raw, rank, world_size, backend })
    }

    /// Joins a group with explicit values: rank 0 serves the rendezvous at `addr:port`.
    pub fn new(
        backend: Backend,
        addr: &str,
        port: u16,
        rank: usize,
        world_size: usize,
        local_rank: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let invalid = |name, v: usize| Error::InvalidArgument { name, reason: format!("{v} is too large") };
        let c_rank = c_int::try_from(rank).map_err(|_| invalid("rank", rank))?;
        let c_world = c_int::try_from(world_size).map_err(|_| invalid("world_size", world_size))?;
        let c_local = c_int::try_from(local_rank).map_err(|_| invalid("local_rank", local_rank))?;
        let c_addr = CString::new(addr)
            .map_err(|_| Error::InvalidArgument { name: "addr", reason: format!("{addr:?} holds a NUL byte") })?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `c_addr` outlives the call; `raw` is a valid out-pointer.
        check("init", unsafe {
            ffi::llm_dist_new(
                backend_code(backend),
                c_addr.as_ptr(),
                c_int::from(port),
                c_rank,
                c_world,
                c_local,
                timeout_ms(timeout),
                &mut raw,
            )
        })?;
        Ok(ProcessGroup { raw, rank, world_size, backend })
    }

    /// Reduces `tensors` over all ranks, in place (`dist.all_reduce`): each rank ends with the
    /// sum (or mean) of every rank's values. The tensors share one dtype and one device (CPU for
    /// Gloo, this rank's GPU for NCCL); several are sent as one flat buffer, as DDP's buckets.
    ///
    /// # Shapes
    /// Any; tensor `i` must have the same shape on every rank.
    pub fn all_reduce(&self, tensors: &mut [Tensor], op: ReduceOp) -> Result<()> {
        let ptrs: Vec<*mut c_void> = tensors.iter_mut().map(|t| t.as_mut_ptr().cast()).collect();
        let op = match op {
            ReduceOp::Sum => 0,
            ReduceOp::Avg => 1,
        };
        // SAFETY: `ptrs` are live `at::Tensor`s borrowed mutably for the call.
        check("all_reduce", unsafe { ffi::llm_dist_all_reduce(self.raw, ptrs.as_ptr(), ptrs.len(), op) })
    }

    /// Overwrites `tensors` on every rank with rank `root`'s (`dist.broadcast`): how DDP makes
    /// all replicas start from the same weights.
    ///
    /// # Shapes
    /// Any; tensor `i` must have the same shape on every rank.
    pub fn broadcast(&self, tensors: &mut [Tensor], root: usize) -> Result<()> {
        let root = c_int::try_from(root)
            .map_err(|_| Error::InvalidArgument { name: "root", reason: format!("{root} is too large") })?;
        let ptrs: Vec<*mut c_void> = tensors.iter_mut().map(|t| t.as_mut_ptr().cast()).collect();
        // SAFETY: as in `all_reduce`.
        check("broadcast", unsafe { ffi::llm_dist_broadcast(self.raw, ptrs.as_ptr(), ptrs.len(), root) })
    }

    /// Waits until every rank has reached this call (`dist.barrier`).
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: `raw` is a live group.
        check("barrier", unsafe { ffi::llm_dist_barrier(self.raw) })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: created by llm_dist_new*, freed once (`dist.destroy_process_group`).
        unsafe { ffi::llm_dist_free(self.raw) }
    }
}
