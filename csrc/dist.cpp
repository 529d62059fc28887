// Process groups from Rust: a thin C API over PyTorch's own c10d engine inside libtorch
// (appendix A's DistributedDataParallel runs on it). Compiled by build.rs only with the cargo
// feature `dist`; the Rust side is `src/util/dist.rs`.
//
// - Rendezvous: c10d::TCPStore (rank 0 is the server at MASTER_ADDR:MASTER_PORT), as
//   `torch.distributed.init_process_group(init_method="env://")` does.
// - Backends: c10d::ProcessGroupGloo (CPU tensors; always) and c10d::ProcessGroupNCCL (CUDA
//   tensors; only when build.rs found CUDA's and NCCL's headers: it defines USE_C10D_NCCL).
//   Both classes are compiled into libtorch_cpu.so / libtorch_cuda.so; this file only includes
//   their headers. ProcessGroupGloo.hpp includes Gloo's headers, which the torch wheel does not
//   ship: csrc/gloo-decl/ declares the little it needs (or GLOO_INCLUDE_DIR names real ones, see
//   csrc/build_dist.rs). Every Gloo type in that header is held through a pointer, so those
//   declarations do not change the class layout, and this file references no Gloo symbol.
//
// Every function catches all C++ exceptions and returns them as a malloc'ed message (NULL on
// success), freed by llm_dist_free_error: nothing unwinds into Rust.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int world_size;
  std::chrono::milliseconds timeout;
};

char* message(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Runs `f`, turning any exception into a message. c10::Error's what() carries a C++ backtrace:
// keep only its first line (what_without_backtrace).
template <typename F>
char* guarded(F f) {
  try {
    f();
    return nullptr;
  } catch (const c10::Error& e) {
    return message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception");
  }
}

// The tensors as a vector, checked to share dtype and device (they are flattened into one buffer).
std::vector<at::Tensor> tensors_of(at::Tensor** ts, size_t n) {
  TORCH_CHECK(n > 0, "no tensors given");
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; i++) {
    TORCH_CHECK(ts[i] != nullptr && ts[i]->defined(), "tensor ", i, " is undefined");
    const at::Tensor& t = *ts[i];
    if (!out.empty()) {
      TORCH_CHECK(t.scalar_type() == out[0].scalar_type(), "tensor ", i, " has dtype ",
                  t.scalar_type(), ", tensor 0 has ", out[0].scalar_type());
      TORCH_CHECK(t.device() == out[0].device(), "tensor ", i, " is on ", t.device(),
                  ", tensor 0 on ", out[0].device());
    }
    out.push_back(t);
  }
  return out;
}

// One buffer holding all the tensors (a bucket, as DDP's reducer builds), run through `op`, then
// copied back. A single tensor that is contiguous is used in place.
template <typename Op>
void through_flat_buffer(std::vector<at::Tensor>& ts, Op op) {
  at::NoGradGuard no_grad;
  if (ts.size() == 1 && ts[0].is_contiguous()) {
    std::vector<at::Tensor> one{ts[0]};
    op(one);
    return;
  }
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (auto& t : ts) flat.push_back(t.reshape({-1}));
  std::vector<at::Tensor> buffer{at::cat(flat)};
  op(buffer);
  int64_t offset = 0;
  for (auto& t : ts) {
    int64_t n = t.numel();
    t.copy_(buffer[0].narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : fallback;
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  TORCH_CHECK(v != nullptr && *v != '\0', "environment variable ", name,
              " is not set (torchrun-style launch: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  TORCH_CHECK(end != v && *end == '\0' && x >= 0 && x < (1L << 30), "environment variable ",
              name, "=", v, " is not a non-negative integer");
  return static_cast<int>(x);
}

}  // namespace

extern "C" {

void llm_dist_free_error(char* e) { std::free(e); }

// 1 when this build can create NCCL process groups (CUDA and NCCL headers were found).
int llm_dist_has_nccl() {
#ifdef USE_C10D_NCCL
  return 1;
#else
  return 0;
#endif
}

// Creates a process group. `backend`: 0 = Gloo, 1 = NCCL. `addr`/`port`: the TCP store of rank 0.
// For NCCL, `local_rank` selects the CUDA device. Blocks until all `world_size` ranks have joined
// or `timeout_ms` has passed.
char* llm_dist_new(int backend, const char* addr, int port, int rank, int world_size,
                   int local_rank, int64_t timeout_ms, void** out) {
  *out = nullptr;
  return guarded([&] {
    TORCH_CHECK(world_size >= 1, "world_size must be at least 1, got ", world_size);
    TORCH_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " is not in 0..", world_size);
    TORCH_CHECK(port > 0 && port < 65536, "port ", port, " is not a TCP port");
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = static_cast<size_t>(world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(addr), so);
    // The keys of torch.distributed's default group (PrefixStore("default_pg") for the group,
    // "0/" for its name, "cpu/" or "cuda/" for the backend), so a Python process can be a rank of
    // the same group; a second group on the same store would use another name.
    auto store = c10::make_intrusive<c10d::PrefixStore>(
        backend == 1 ? "cuda/" : "cpu/",
        c10::make_intrusive<c10d::PrefixStore>("0/", c10::make_intrusive<c10d::PrefixStore>("default_pg", tcp)));
    auto g = std::make_unique<Group>();
    g->store = store;
    g->rank = rank;
    g->world_size = world_size;
    g->timeout = timeout;
    if (backend == 0) {
      auto opts = c10d::ProcessGroupGloo::Options::create_default(timeout);
      g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, opts);
    } else if (backend == 1) {
#ifdef USE_C10D_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, opts);
#else
      TORCH_CHECK(false, "this build has no NCCL: build.rs found no CUDA/NCCL headers");
#endif
    } else {
      TORCH_CHECK(false, "unknown backend ", backend, " (0 = gloo, 1 = nccl)");
    }
    *out = g.release();
  });
}

// The torchrun variables: RANK, WORLD_SIZE, MASTER_ADDR (default 127.0.0.1), MASTER_PORT
// (default 29500), LOCAL_RANK (default RANK).
char* llm_dist_new_from_env(int backend, int64_t timeout_ms, void** out) {
  *out = nullptr;
  int rank = 0, world_size = 0, local_rank = 0, port = 0;
  char* err = guarded([&] {
    rank = env_int("RANK");
    world_size = env_int("WORLD_SIZE");
    port = std::getenv("MASTER_PORT") ? env_int("MASTER_PORT") : 29500;
    local_rank = std::getenv("LOCAL_RANK") ? env_int("LOCAL_RANK") : rank;
  });
  if (err != nullptr) return err;
  return llm_dist_new(backend, env_or("MASTER_ADDR", "127.0.0.1"), port, rank, world_size,
                      local_rank, timeout_ms, out);
}

void llm_dist_free(void* g) { delete static_cast<Group*>(g); }

// All-reduces `n` tensors in place (same dtype and device): op 0 = sum, 1 = average.
char* llm_dist_all_reduce(void* gp, at::Tensor** ts, size_t n, int op) {
  return guarded([&] {
    auto* g = static_cast<Group*>(gp);
    TORCH_CHECK(op == 0 || op == 1, "unknown reduce op ", op, " (0 = sum, 1 = average)");
    auto tensors = tensors_of(ts, n);
    through_flat_buffer(tensors, [&](std::vector<at::Tensor>& buf) {
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
      o.timeout = g->timeout;
      g->backend->allreduce(buf, o)->wait(g->timeout);
      // Gloo has no AVG: divide the sum (what DDP does with its gradient buckets).
      if (op == 1) buf[0].div_(g->world_size);
    });
  });
}

// Copies rank `root`'s tensors into every other rank's (in place, same dtype and device).
char* llm_dist_broadcast(void* gp, at::Tensor** ts, size_t n, int root) {
  return guarded([&] {
    auto* g = static_cast<Group*>(gp);
    TORCH_CHECK(root >= 0 && root < g->world_size, "root ", root, " is not in 0..", g->world_size);
    auto tensors = tensors_of(ts, n);
    through_flat_buffer(tensors, [&](std::vector<at::Tensor>& buf) {
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.rootTensor = 0;
      o.timeout = g->timeout;
      g->backend->broadcast(buf, o)->wait(g->timeout);
    });
  });
}

// Blocks until every rank has called it.
char* llm_dist_barrier(void* gp) {
  return guarded([&] {
    auto* g = static_cast<Group*>(gp);
    c10d::BarrierOptions o;
    o.timeout = g->timeout;
    g->backend->barrier(o)->wait(g->timeout);
  });
}

}  // extern "C"
