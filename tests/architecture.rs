//! The library's layers point one way: utilities → text and plots → neural-network parts →
//! training → tasks → the chapter facades (and the CLI, a separate crate target). This test reads
//! every module under `src/` (the CLI aside), collects the `crate::` and `super::` paths its code
//! names (comments left out), and fails when
//! - a module imports from a layer above its own (e.g. `nn` naming `tasks`), or
//! - modules import each other in a circle, at any length (`a → b → c → a`).
//!
//! A folder's `mod.rs` declaring and re-exporting its own submodules is not an import. Run
//! `cargo test --test architecture -- --nocapture` to print each module's imports by layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first; a module may import from its own layer and the ones it lists.
const LAYERS: &[(&str, &[&str], &str)] = &[
    ("util", &[], "utilities: device and seeding, random generators, files, delimited text, the error type"),
    ("text", &["util"], "chapter 2: data files, tokenizers, data set and loader"),
    ("viz", &["util"], "figures and plots"),
    ("nn", &["text", "viz", "util"], "chapters 2.7-4: layers, attention, the GPT model, weight files"),
    ("training", &["nn", "text", "viz", "util"], "chapter 5, appendix D: losses, the loop, sampling, AdamW, checkpoints"),
    ("tasks", &["training", "nn", "text", "viz", "util"], "chapters 6-7, appendices A and E"),
    ("facades", &["tasks", "training", "nn", "text", "viz", "util"], "the chapter modules ch01 ... appendix_e, and the exercises' checks"),
];

/// The layer of a module path (`nn::model` → "nn").
fn layer_of(module: &str) -> &'static str {
    let top = module.split("::").next().unwrap_or("");
    match top {
        "util" | "error" => "util",
        "text" => "text",
        "viz" => "viz",
        "nn" => "nn",
        "training" => "training",
        "tasks" | "basics" => "tasks",
        // The crate root (chapter facades, old-path re-exports) and chapter 1's module.
        "" | "ch01" | "exercises" => "facades",
        other => panic!("module `{other}` is in no layer: add it to tests/architecture.rs"),
    }
}

/// The module path of a source file: `src/nn/model.rs` → `nn::model`, `src/text/tokenizer/mod.rs`
/// → `text::tokenizer`, `src/lib.rs` → `` (the root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.strip_suffix(".rs").expect("a .rs file");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "bin") {
                continue; // the CLI: its own crate target, allowed to use everything
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a Rust file without its comments and string literals (doc links and messages
/// that name a path are not imports).
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let b = source.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // a char literal such as '"'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path written `crate::a::b::...` or `super::...` in `code`, as module paths from the
/// root (the `{a, b}` groups of a `use` expanded one level).
fn named_paths(code: &str, module: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (start, anchor) in code.match_indices("crate::").map(|(i, _)| (i, "crate")).chain(code.match_indices("super::").map(|(i, _)| (i, "super"))) {
        if start > 0 && code[..start].chars().next_back().is_some_and(|c| is_ident(c) || c == ':') {
            continue; // `$crate::`, `foo::super::` and the like
        }
        let base: Vec<&str> = match anchor {
            "crate" => Vec::new(),
            _ => {
                // `super` of `a::b` is `a` (a folder's mod.rs is the folder's module itself).
                let mut parts: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
                parts.pop();
                parts
            }
        };
        let rest = &code[start + anchor.len() + 2..];
        let mut segs: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        let mut r = rest;
        loop {
            let ident: String = r.chars().take_while(|&c| is_ident(c)).collect();
            if ident.is_empty() {
                break;
            }
            segs.push(ident.clone());
            r = &r[ident.len()..];
            if let Some(after) = r.strip_prefix("::") {
                r = after;
                if let Some(group) = r.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    for item in group[..end].split(',') {
                        let first: String = item.trim().chars().take_while(|&c| is_ident(c)).collect();
                        if !first.is_empty() {
                            paths.push(format!("{}::{first}", segs.join("::")));
                        }
                    }
                    break;
                }
            } else {
                break;
            }
        }
        if !segs.is_empty() {
            paths.push(segs.join("::"));
        }
    }
    paths
}

/// The longest known module that `path` starts with.
fn resolve<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| modules.get(&parts[..n].join("::")))
}

fn is_descendant(child: &str, parent: &str) -> bool {
    parent.is_empty() || child.starts_with(&format!("{parent}::"))
}

/// The module graph: each module and the modules its code names.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let source = std::fs::read_to_string(file).expect("a readable source file");
        // A file's unit tests (its trailing `#[cfg(test)] mod tests`) are not part of the library.
        let library = source.find("#[cfg(test)]\nmod tests").map_or(source.as_str(), |end| &source[..end]);
        let code = code_only(library);
        let mut deps = BTreeSet::new();
        for path in named_paths(&code, &module) {
            let target = resolve(&path, &modules).unwrap_or_else(|| {
                panic!("{}: `crate::{path}` names no module (an item re-exported at the root? use its module's path)", file.display())
            });
            // A module naming itself, or a folder's mod.rs its own submodules, is no import.
            if *target != module && !is_descendant(target, &module) {
                deps.insert(target.clone());
            }
        }
        graph.insert(module, deps);
    }
    graph
}

/// One circle of imports in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|m| m == next).expect("on the stack");
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn shown(module: &str) -> &str {
    if module.is_empty() {
        "(crate root)"
    } else {
        module
    }
}

#[test]
fn modules_import_downward_only_and_in_no_circle() {
    let graph = import_graph();
    println!("crate:: imports of each module, by layer (bottom first):");
    for (layer, below, what) in LAYERS {
        println!("\n[{layer}] {what}; may import: {}", if below.is_empty() { "-".to_string() } else { below.join(", ") });
        for (module, deps) in graph.iter().filter(|(m, _)| layer_of(m) == *layer) {
            let deps: Vec<&str> = deps.iter().map(|d| shown(d)).collect();
            println!("  {:<28} -> {}", shown(module), if deps.is_empty() { "-".to_string() } else { deps.join(", ") });
        }
    }
    let mut upward = Vec::new();
    for (module, deps) in &graph {
        let layer = layer_of(module);
        let allowed = LAYERS.iter().find(|(l, _, _)| *l == layer).expect("a known layer").1;
        for dep in deps {
            let dep_layer = layer_of(dep);
            if dep_layer != layer && !allowed.contains(&dep_layer) {
                upward.push(format!("{} ({layer}) imports {} ({dep_layer})", shown(module), shown(dep)));
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layers:\n{}", upward.join("\n"));
    if let Some(cycle) = find_cycle(&graph) {
        let names: Vec<&str> = cycle.iter().map(|m| shown(m)).collect();
        panic!("an import circle: {}", names.join(" -> "));
    }
}

/// The checker itself: a circle and an upward import in a made-up graph are found.
#[test]
fn the_checker_finds_circles_and_reads_paths() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("nn::layers".into(), ["tasks::lora".to_string()].into());
    graph.insert("tasks::lora".into(), ["tasks::classify".to_string()].into());
    graph.insert("tasks::classify".into(), ["nn::layers".to_string()].into());
    let cycle = find_cycle(&graph).expect("the circle is found");
    assert_eq!(cycle.first(), cycle.last(), "a circle ends where it starts: {cycle:?}");
    assert_eq!(cycle.len(), 4, "three modules in the circle: {cycle:?}");
    graph.insert("tasks::classify".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);

    let code = code_only("use crate::nn::{model::GptModel, layers};\n// crate::tasks::x\nlet s = \"crate::viz\";\nuse super::Tokenizer;");
    let paths = named_paths(&code, "text::tokenizer::bpe");
    assert_eq!(paths, ["nn::model", "nn::layers", "nn", "text::tokenizer::Tokenizer"]);
}
