//! The crate's build.rs must keep libtorch's CUDA library linked into our binaries and tests:
//! rustc's default `--as-needed` drops it, and CUDA then silently reports "unavailable".
//! This test binary is one of those binaries; it looks at its own memory map before anything
//! could dlopen the library.

use std::path::PathBuf;

fn mapped_libraries() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines().filter_map(|l| l.split_whitespace().nth(5)).map(PathBuf::from).collect()
}

#[test]
fn libtorch_cuda_is_linked_whenever_libtorch_ships_it() {
    // Touch libtorch (this does not load the CUDA library by itself).
    let _ = llm_from_scratch::tch::Tensor::zeros([1], llm_from_scratch::tch::kind::FLOAT_CPU);
    let libs = mapped_libraries();
    let cpu = libs
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "libtorch_cpu.so"))
        .expect("libtorch_cpu.so is mapped");
    let cuda_file = cpu.with_file_name("libtorch_cuda.so");
    let cuda_mapped = libs.iter().any(|p| p.file_name().is_some_and(|n| n == "libtorch_cuda.so"));
    if cuda_file.exists() {
        assert!(cuda_mapped, "{} exists but is not linked into this test binary: build.rs's --no-as-needed did not take", cuda_file.display());
        // And the library reports it as loaded without having to dlopen it.
        assert!(llm_from_scratch::device_report().cuda_library);
    } else {
        eprintln!("libtorch is a CPU-only build ({} absent): nothing to check", cuda_file.display());
    }
}
