//! Where tensors live and how runs are made repeatable (book appendix A.9, "Optimizing training
//! performance with GPUs"; chapter 2 onwards seeds with `torch.manual_seed(123)`).
//!
//! [`device`] picks CUDA when a GPU is usable and the CPU otherwise, and says which in one line.
//! In a compiled binary or test, libtorch's CUDA library is linked by this crate's `build.rs`;
//! inside an evcxr notebook those link flags do not reach the cell, so [`device`] first loads
//! `libtorch_cuda.so` itself ([`load_libtorch_cuda`]) before asking libtorch about CUDA.

use std::ffi::CString;
use std::fmt;

use tch::{Cuda, Device};

use crate::error::{Error, Result};

/// What [`device`] found: the device chosen and why, printable as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// The device tensors should be created on.
    pub device: Device,
    /// Number of CUDA devices libtorch sees (0 without a GPU or without CUDA support).
    pub cuda_devices: usize,
    /// Whether libtorch's CUDA library is loaded into this process.
    pub cuda_library: bool,
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.device {
            Device::Cuda(i) => write!(f, "device: cuda:{i} ({} CUDA device(s) visible)", self.cuda_devices),
            _ if self.cuda_library => write!(f, "device: cpu (libtorch has CUDA support, but no GPU is visible)"),
            _ => write!(f, "device: cpu (libtorch's CUDA library is not loaded: CPU-only build)"),
        }
    }
}

/// Choose the device without printing: CUDA device 0 when one is usable, else the CPU.
pub fn device_report() -> DeviceReport {
    let cuda_library = load_libtorch_cuda().unwrap_or(false);
    let cuda_devices = if cuda_library { Cuda::device_count().max(0) as usize } else { 0 };
    let device = if cuda_devices > 0 && Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu };
    DeviceReport { device, cuda_devices, cuda_library }
}

/// The device to train on: `Device::Cuda(0)` when a GPU is usable, else `Device::Cpu`.
/// Prints one line saying what it chose (e.g. `device: cpu (... no GPU is visible)`).
///
/// The book's `torch.device("cuda" if torch.cuda.is_available() else "cpu")`.
pub fn device() -> Device {
    let report = device_report();
    println!("{report}");
    report.device
}

/// Make sure libtorch's CUDA library (`libtorch_cuda.so`) is loaded into this process, and say
/// whether it is. Returns `Ok(false)` when libtorch is a CPU-only build (no such library next to
/// `libtorch_cpu.so`), `Ok(true)` once it is loaded.
///
/// Binaries and tests of this crate have it linked already (see `build.rs`); an evcxr notebook
/// cell does not, and must call this (as [`device`] does) before `tch::Cuda::is_available()`.
pub fn load_libtorch_cuda() -> Result<bool> {
    #[cfg(target_os = "linux")]
    {
        // Already loaded (linked, or loaded before)? RTLD_NOLOAD only looks.
        if dlopen("libtorch_cuda.so", libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD).is_ok() {
            return Ok(true);
        }
        // Not loaded: look for it next to libtorch_cpu.so, which is always loaded with tch.
        let Some(dir) = loaded_library_dir("libtorch_cpu.so") else {
            return Ok(false);
        };
        let path = dir.join("libtorch_cuda.so");
        if !path.exists() {
            return Ok(false);
        }
        let path = path.to_string_lossy().into_owned();
        dlopen(&path, libc::RTLD_NOW | libc::RTLD_GLOBAL)
            .map(|()| true)
            .map_err(|reason| Error::Library { library: path, reason })
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(false)
    }
}

#[cfg(target_os = "linux")]
fn dlopen(name: &str, flags: libc::c_int) -> std::result::Result<(), String> {
    let c_name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: dlopen with a valid C string; the handle is deliberately kept open forever
    // (libtorch's CUDA kernels must stay registered for the life of the process).
    let handle = unsafe { libc::dlopen(c_name.as_ptr(), flags) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() {
            "unknown dlopen error".to_string()
        } else {
            unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned()
        };
        return Err(msg);
    }
    Ok(())
}

/// The folder of a shared library already mapped into this process, read from
/// `/proc/self/maps` (so it works whatever `LD_LIBRARY_PATH` or rpath found it).
#[cfg(target_os = "linux")]
fn loaded_library_dir(file_name: &str) -> Option<std::path::PathBuf> {
    // Touch libtorch so that it is mapped even if no tensor was made yet.
    let _ = tch::utils::has_cuda();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(std::path::Path::new)
        .find(|p| p.file_name().is_some_and(|n| n == file_name))
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
}

/// libtorch's default random generator is global to the process. Code that seeds and then draws
/// (tests running in parallel threads, say) holds this lock so no other thread draws in between:
/// `let _rng = rng_lock(); set_seed(123); ...`.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A panic while holding the lock does not corrupt the generator: ignore poisoning.
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seed libtorch's random number generators (CPU and CUDA), as `torch.manual_seed(seed)` does.
/// With the same seed, the same module creation order and the same distributions, weights equal
/// PyTorch's bit for bit on the CPU.
pub fn set_seed(seed: u64) {
    tch::manual_seed(seed as i64);
    if Cuda::is_available() {
        Cuda::manual_seed_all(seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_repeats_random_tensors() {
        let _rng = rng_lock();
        set_seed(123);
        let a = tch::Tensor::rand([4], (tch::Kind::Float, Device::Cpu));
        set_seed(123);
        let b = tch::Tensor::rand([4], (tch::Kind::Float, Device::Cpu));
        set_seed(124);
        let c = tch::Tensor::rand([4], (tch::Kind::Float, Device::Cpu));
        assert!(a.equal(&b), "same seed must give the same numbers");
        assert!(!a.equal(&c), "another seed must give other numbers");
    }

    #[test]
    fn seed_123_matches_pytorch() {
        // torch.manual_seed(123); torch.rand(3) -> tensor([0.2961, 0.5166, 0.2517])
        let _rng = rng_lock();
        set_seed(123);
        let v = Vec::<f32>::try_from(tch::Tensor::rand([3], (tch::Kind::Float, Device::Cpu))).unwrap();
        let want = [0.2961f32, 0.5166, 0.2517];
        for (got, want) in v.iter().zip(want) {
            assert!((got - want).abs() < 1e-4, "torch.rand after seed 123: got {v:?}, want {want:?}");
        }
    }

    #[test]
    fn report_is_consistent() {
        let r = device_report();
        assert_eq!(r.device.is_cuda(), r.cuda_devices > 0, "{r}");
        if !r.cuda_library {
            assert_eq!(r.device, Device::Cpu);
        }
        let line = r.to_string();
        assert!(line.starts_with("device: "), "{line}");
        assert!(!line.contains('\n'), "the report is one line: {line}");
    }
}
