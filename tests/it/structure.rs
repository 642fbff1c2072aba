//! Rules of the code that hold themselves: no import circles among the files of `src/` and
//! `macros/src/`, `openapi.rs` and `td.rs` import nothing of `server`, and the one map of the
//! code (`docs/architecture.md`) names every module folder.
//!
//! Imports are read from the text: `use` trees (brace groups expanded), and inline `crate::a::`
//! and `super::a::` paths, each resolved to the longest module path that is a file. Unit-test
//! modules at the bottom of a file (`#[cfg(test)] mod tests { .. }`) are left out: a test may
//! import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `root`, by module path (`server::affordance::property`; `lib.rs` and
/// `main.rs` are the empty path, `mod.rs` its folder's).
fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().with_extension("");
                let mut segments: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    segments.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    segments.pop();
                }
                found.insert(segments.join("::"), path);
            }
        }
    }
    found
}

/// The text of a file without comments and without its unit-test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let close = tree.rfind('}').unwrap_or(tree.len());
    let (head, body) = (&tree[..open], &tree[open + 1..close]);
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for ch in body.chars() {
        match ch {
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            '{' => {
                depth += 1;
                current.push(ch);
            }
            '}' => {
                depth -= 1;
                current.push(ch);
            }
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
        .iter()
        .filter(|part| !part.trim().is_empty())
        .flat_map(|part| expand(&format!("{head}{}", part.trim())))
        .collect()
}

/// Every path a file names: `use` trees and inline `crate::`/`super::` paths.
fn paths_named(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        rest = &rest[at + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = rest.find(';') {
            paths.extend(expand(&rest[..end]));
        }
    }
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                paths.push(tail[..end].trim_end_matches(':').to_owned());
            }
            rest = &rest[at + start.len()..];
        }
    }
    paths
}

/// The module a path names from module `here`, if it is one of `modules`.
fn resolve(path: &str, here: &str, modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segments: Vec<&str> = path
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut current: Vec<&str> = if here.is_empty() {
        Vec::new()
    } else {
        here.split("::").collect()
    };
    match segments.first() {
        Some(&"crate") => {
            current.clear();
            segments.remove(0);
        }
        Some(&"super" | &"self") => {
            while segments.first() == Some(&"super") {
                current.pop();
                segments.remove(0);
            }
            if segments.first() == Some(&"self") {
                segments.remove(0);
            }
        }
        _ => return None,
    }
    (1..=segments.len()).rev().find_map(|k| {
        let candidate = current
            .iter()
            .chain(&segments[..k])
            .copied()
            .collect::<Vec<_>>()
            .join("::");
        modules.contains_key(&candidate).then_some(candidate)
    })
}

/// The import graph of a crate's source folder: module to the modules it imports.
fn imports(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(root);
    modules
        .iter()
        .map(|(module, file)| {
            let targets = paths_named(&code(file))
                .iter()
                .filter_map(|path| resolve(path, module, &modules))
                // A module's own submodules and its own file are not circles.
                .filter(|target| target != module && !target.starts_with(&format!("{module}::")))
                .filter(|target| !module.is_empty() && !target.is_empty())
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_owned());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn the_files_of_src_and_macros_import_in_a_tree() {
    for root in ["src", "macros/src"] {
        let graph = imports(&Path::new(ROOT).join(root));
        assert!(graph.len() > 10, "{root}: {} files", graph.len());
        let found = circles(&graph);
        assert!(found.is_empty(), "{root}: import circles: {found:?}");
    }
    let graph = imports(&Path::new(ROOT).join("src"));
    for document in ["openapi", "td"] {
        let server: Vec<_> = graph[document]
            .iter()
            .filter(|target| target.starts_with("server"))
            .collect();
        assert!(server.is_empty(), "{document} imports {server:?}");
    }
}

#[test]
fn the_circle_check_finds_a_circle() {
    let mut graph = imports(&Path::new(ROOT).join("src"));
    assert!(
        graph["server::builder"].contains("server::options"),
        "{:?}",
        graph["server::builder"]
    );
    graph
        .get_mut("server::options")
        .unwrap()
        .insert("server::builder".to_owned());
    let found = circles(&graph);
    assert!(
        found
            .iter()
            .any(|c| c.contains(&"server::builder".to_owned())
                && c.contains(&"server::options".to_owned())),
        "{found:?}"
    );
}

#[test]
fn the_map_of_the_code_names_every_module_folder() {
    let map = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap();
    for root in ["src", "macros/src"] {
        let mut folders = vec![Path::new(ROOT).join(root)];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    let name = path
                        .strip_prefix(ROOT)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    assert!(
                        map.contains(&format!("`{name}/`")),
                        "docs/architecture.md does not name `{name}/`"
                    );
                    folders.push(path);
                }
            }
        }
    }
    // The other documents point at the map rather than keep one of their own.
    for (other, table_row) in [("README.md", "| `src/"), ("src/server/mod.rs", "//! | `")] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(other)).unwrap();
        assert!(
            text.contains("docs/architecture.md"),
            "{other} does not link the map"
        );
        assert!(!text.contains(table_row), "{other} keeps a map of its own");
    }
}
