//! Part of build.rs, only with the cargo feature `dist`: compiles `csrc/dist.cpp`, the C shim over
//! PyTorch's c10d process groups (see that file), against libtorch's own headers with the flags
//! torch-sys uses for tch's wrapper (C++17, the C++11 ABI, GLOG_USE_GLOG_EXPORT).
//!
//! - Gloo (CPU) is always built. `ProcessGroupGloo.hpp` includes Gloo's headers, which the torch
//!   wheel lacks. By default they are `csrc/gloo-decl/`: the few declarations that header needs
//!   (see its README), so nothing is installed. `GLOO_INCLUDE_DIR` points to Gloo's real headers
//!   instead (Debian: `apt-get install libgloo-dev`, then `GLOO_INCLUDE_DIR=/usr/include`; its
//!   2022 snapshot also compiles and runs). Either way only declarations are used: the Gloo code
//!   that runs is the copy inside `libtorch_cpu.so`, never a system libgloo.
//! - NCCL (CUDA) is added when libtorch has `libtorch_cuda.so` and the headers of CUDA's runtime
//!   (`cuda_runtime_api.h`, `crt/host_config.h`, `nv/target`) and of NCCL (`nccl.h`) are found:
//!   in the pip wheels next to torch (`site-packages/nvidia/*/include`: nvidia-cuda-runtime and
//!   nvidia-nccl come with torch; nvidia-cuda-crt and nvidia-cuda-cccl must be added), else
//!   `CUDA_HOME`/`/usr/local/cuda`; `LLM_DIST_CUDA_INCLUDE` (a `:` list) is searched first.
//!   `LLM_DIST_NCCL=0` leaves NCCL out; `LLM_DIST_NCCL=1` makes missing headers a build warning.

use std::path::{Path, PathBuf};

/// The first of `dirs` that holds `file`.
fn find(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter().find(|d| d.join(file).exists()).cloned()
}

pub fn compile(lib: &Path) {
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-changed=csrc/build_dist.rs");
    for var in ["GLOO_INCLUDE_DIR", "CUDA_HOME", "LLM_DIST_CUDA_INCLUDE", "LLM_DIST_NCCL"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let torch = lib.parent().expect("libtorch's lib folder has a parent");
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(torch.join("include"))
        .include(torch.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .define("USE_C10D_GLOO", None)
        .file(here.join("csrc/dist.cpp"));

    let gloo = std::env::var_os("GLOO_INCLUDE_DIR").map_or_else(|| here.join("csrc/gloo-decl"), PathBuf::from);
    if !gloo.join("gloo/rendezvous/store.h").exists() {
        panic!("feature `dist`: GLOO_INCLUDE_DIR={} holds no gloo/rendezvous/store.h", gloo.display());
    }
    println!("cargo:rerun-if-changed=csrc/gloo-decl");
    build.include(&gloo);

    let want_nccl = std::env::var("LLM_DIST_NCCL").map_or(true, |v| v != "0");
    if want_nccl && lib.join("libtorch_cuda.so").exists() {
        // site-packages/torch/lib -> site-packages/nvidia/<pkg>/include
        let mut dirs: Vec<PathBuf> = torch
            .parent()
            .and_then(|sp| std::fs::read_dir(sp.join("nvidia")).ok())
            .map(|rd| rd.filter_map(|e| Some(e.ok()?.path().join("include"))).collect())
            .unwrap_or_default();
        dirs.sort();
        if let Some(extra) = std::env::var_os("LLM_DIST_CUDA_INCLUDE") {
            dirs.splice(0..0, std::env::split_paths(&extra));
        }
        if let Some(cuda) = std::env::var_os("CUDA_HOME") {
            dirs.push(PathBuf::from(cuda).join("include"));
        }
        dirs.push(PathBuf::from("/usr/local/cuda/include"));
        dirs.push(PathBuf::from("/usr/include"));
        let needed = ["cuda_runtime_api.h", "crt/host_config.h", "nv/target", "nccl.h"];
        let found: Vec<Option<PathBuf>> = needed.iter().map(|f| find(&dirs, f)).collect();
        if found.iter().all(Option::is_some) {
            let mut incs: Vec<PathBuf> = found.into_iter().flatten().collect();
            incs.dedup();
            for inc in incs {
                if inc != gloo && inc != Path::new("/usr/include") {
                    build.include(inc);
                }
            }
            build.define("USE_C10D_NCCL", None);
            println!("cargo:rustc-link-lib=dylib=c10_cuda");
            println!("cargo:rustc-link-lib=dylib=torch_cuda");
        } else {
            let missing: Vec<&str> = needed.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(n, _)| *n).collect();
            // A warning only when NCCL was asked for (`LLM_DIST_NCCL=1`): `dist` is a default
            // feature and most machines (CI included) have no CUDA headers; `llm info` says
            // whether NCCL is in, and `cargo build -vv` shows this line.
            let prefix = if std::env::var("LLM_DIST_NCCL").is_ok_and(|v| v == "1") { "cargo:warning=" } else { "" };
            println!(
                "{prefix}feature `dist`: NCCL left out (only Gloo): {} not found (pip install nvidia-cuda-crt nvidia-cuda-cccl of torch's CUDA version, or set LLM_DIST_CUDA_INCLUDE or CUDA_HOME)",
                missing.join(", ")
            );
        }
    }
    build.compile("llm_dist");
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
