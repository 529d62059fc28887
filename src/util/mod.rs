//! Small utilities every layer may use; they import nothing else from the crate but [`crate::error`].
//!
//! | module | what |
//! |---|---|
//! | [`device`] | appendix A.9: choosing CUDA or the CPU; seeding (`torch.manual_seed`) |
//! | [`files`] | files written atomically (a temporary file, then a rename) |

pub mod device;
pub mod files;
