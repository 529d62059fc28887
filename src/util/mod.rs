//! Small utilities every layer may use; they import nothing else from the crate but [`crate::error`].
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the `llm` program started from a notebook cell (built first if needed) |
//! | `dist` | appendix A.13: process groups (all-reduce, broadcast, barrier) on PyTorch's c10d, Gloo or NCCL (feature `dist`) |
//! | [`device`] | appendix A.9: choosing CUDA or the CPU; seeding (`torch.manual_seed`) |
//! | [`files`] | files written atomically (a temporary file, then a rename) |
//! | [`show`] | tensors printed as PyTorch prints them (`tensor([[1, 2], ...])`), for the notebooks |
//! | [`rng`] | the Mersenne Twister of NumPy's `RandomState` (chapter 6's split) and of `torch.randperm` (appendix A's shuffle); `SplitMix64`, the data loaders' shuffle |
//! | [`tabular`] | delimited text as pandas reads it (`read_csv`) and CSV fields as it writes them (`to_csv`) |

pub mod cli;
pub mod device;
#[cfg(feature = "dist")]
pub mod dist;
pub mod files;
pub mod rng;
pub mod show;
pub mod tabular;
