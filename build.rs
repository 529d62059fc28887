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

/// Feature `dist`: the C++ shim over libtorch's process groups (`csrc/`).
#[cfg(feature = "dist")]
#[path = "csrc/build_dist.rs"]
mod dist;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    embed_diagrams();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB is not set (torch-sys did not report libtorch's folder); CUDA may be unavailable");
        return;
    };
    #[cfg(feature = "dist")]
    dist::compile(std::path::Path::new(&lib));
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

/// Compile the diagrams in `assets/figures/*.svg` into the library (`viz::diagrams`): writes
/// `$OUT_DIR/diagrams.rs`, a sorted table of (name, SVG text), so a new file needs no code.
fn embed_diagrams() {
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("assets")
        .join("figures");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".svg").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut table = String::from("/// The diagrams in `assets/figures/`, sorted by name: (name, SVG text).\npub static DIAGRAMS: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = dir.join(format!("{name}.svg"));
        println!("cargo:rerun-if-changed={}", path.display());
        table.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    table.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("diagrams.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
