//! The engine's layers, as the crate doc draws them, checked against the source: a module imports
//! only from its own layer or below, and no two modules import each other, directly or around a
//! circle. A new module must be given a layer here (the test names it otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `actors/src` and its layer (see `lib.rs`).
const LAYERS: &[(&str, u8)] = &[
    ("run", 4),
    ("supervisor", 3),
    ("fetcher", 3),
    ("writer", 3),
    ("reporter", 3),
    ("bar", 3),
    ("frontier", 3),
    ("archivist", 3),
    ("protocol", 2),
    ("recording", 2),
    ("policy", 1),
    ("store", 1),
    ("http", 1),
    ("wire", 1),
    ("job", 0),
    ("body", 0),
    ("config", 0),
    ("spec", 0),
    ("sink", 0),
    ("extract", 0),
    ("names", 0),
    ("seen", 0),
    ("journal", 0),
    ("life", 0),
    ("source", 0),
    ("archive", 0),
    ("index", 0),
    ("sitemap", 0),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules named as `crate::name` in the code of a file (its tests left out: a test may use
/// anything).
fn imports(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // `flags_actors::` or `$crate::` are not this crate's paths from inside.
        if code[..i].ends_with('$') || code[..i].ends_with('_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            // `crate::{a::X, b}`: the first name of each item at the top of the braces.
            Some(group) => {
                let mut depth = 0;
                let mut item_start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            item_start = false;
                            let name = module_name(&group[j..]);
                            if !name.is_empty() {
                                found.insert(name);
                            }
                        }
                        _ => {}
                    }
                }
            }
            None => {
                let name = module_name(rest);
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn module_name(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
        .collect()
}

/// Module → the other top-level modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        assert!(
            layers.contains_key(top.as_str()),
            "{}: give the module `{top}` a layer in tests/layers.rs and lib.rs",
            rel.display()
        );
        let source = std::fs::read_to_string(&file).expect("read a source file");
        let deps = graph.entry(top.clone()).or_default();
        for m in imports(&source) {
            if m != top && layers.contains_key(m.as_str()) {
                deps.insert(m);
            }
        }
    }
    graph
}

#[test]
fn a_module_imports_only_from_its_own_layer_or_below() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, deps) in graph() {
        for dep in deps {
            if layers[dep.as_str()] > layers[module.as_str()] {
                wrong.push(format!(
                    "{module} (layer {}) imports {dep} (layer {})",
                    layers[module.as_str()],
                    layers[dep.as_str()]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    // Depth-first search for a cycle, naming it when found.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for dep in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(dep, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "a circle of imports: {cycle:?}");
    }
    // The check sees the imports it must: the fetcher talks to others only through the protocol.
    assert!(
        graph["fetcher"].contains("protocol"),
        "{:?}",
        graph["fetcher"]
    );
    assert!(!graph["http"].contains("frontier"));
}
