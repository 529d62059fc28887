//! Link libtorch so that CUDA is really there when a GPU is.
//!
//! rustc links with `-Wl,--as-needed`, so the linker drops `libtorch_cuda.so`: no symbol of it
//! is referenced directly (its kernels register themselves when the library is loaded). The
//! binary then runs, but `tch::Cuda::is_available()` is silently false. We turn `--as-needed`
//! off for our binaries, tests, examples and benches, link `torch` again, and add an rpath to
//! libtorch's folder so nothing needs `LD_LIBRARY_PATH` at run time.
//!
//! `DEP_TCH_LIBTORCH_LIB` is set by torch-sys (`links = "tch"`), which is why Cargo.toml lists
//! torch-sys as a direct dependency. These link arguments do not reach crates that depend on this
//! one (such as an evcxr notebook cell): there `llm_from_scratch::load_libtorch_cuda()` dlopens
//! the library instead.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB is not set (torch-sys did not report libtorch's folder); CUDA may be unavailable");
        return;
    };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-ltorch");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-ltorch_cuda");
        }
    }
    if target_os == "linux" || target_os == "macos" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
