//! The layer table of `docs/ARCHITECTURE.md`, checked against the code:
//! every `crate::…` path in a module of `sim/src` must name a module of the
//! same layer or a lower one. A module missing from the table fails too, so
//! a new module gets a layer when it is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level module → layer (0 is the bottom). Keep in step with the table
/// in docs/ARCHITECTURE.md.
const LAYERS: &[(&str, u8)] = &[
    ("rng", 0),
    ("trace", 0),
    ("diff", 0),
    ("panic_guard", 0),
    ("workload", 0),
    ("mix", 0),
    ("pool", 0),
    ("stats", 0),
    ("coverage", 0),
    ("linearize", 0),
    ("fault", 1),
    ("config", 1),
    ("swarm", 1),
    ("pin", 1),
    ("checker", 1),
    ("snapshot_view", 1),
    ("scenario_file", 1),
    ("cluster", 2),
    ("run", 3),
    ("scenario", 4),
    ("explore", 4),
    ("sweep", 5),
    ("report_merge", 5),
    ("floor", 5),
    ("localize", 5),
    ("swarm_table", 5),
    ("shrink", 5),
    ("guided", 5),
    ("main", 6),
    ("cli_run", 6),
    ("cli_backup", 6),
    ("cli_explore", 6),
    ("cli_explore_cluster", 6),
    ("cli_shrink", 6),
    ("cli_merge", 6),
    ("cli_scaling", 6),
    ("cli_localize", 6),
    ("cli_coverage", 6),
    ("demo", 6),
    ("chrome_trace", 6),
    // The crate root only lists the modules.
    ("lib", 7),
    // An item of main.rs that the CLI files reach as `crate::parse_bugs`
    // (in the binary crate, `crate` is main.rs).
    ("parse_bugs", 6),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("sim/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`cluster/world.rs` → `cluster`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("file under src");
    let first = rel.components().next().expect("non-empty path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The top-level modules a file's code names through `crate::` (test
/// modules at the end of a file aside: they may reach anywhere).
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::X, b};`: each item's first segment.
                for item in group.split(',') {
                    let head: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !head.is_empty() {
                        out.push((n + 1, head));
                    }
                }
                continue;
            }
            let head: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, head));
        }
    }
    out
}

#[test]
fn every_crate_path_points_down_the_layer_table() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let from = top_module(&src, file);
        let Some(&from_layer) = layers.get(from.as_str()) else {
            problems.push(format!("{}: module `{from}` has no layer", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source is readable");
        for (line, to) in named_modules(&text) {
            if to == from {
                continue;
            }
            match layers.get(to.as_str()) {
                Some(&to_layer) if to_layer <= from_layer => {}
                Some(&to_layer) => problems.push(format!(
                    "{}:{line}: `{from}` (layer {from_layer}) uses `{to}` (layer {to_layer})",
                    file.display()
                )),
                None => problems.push(format!("{}:{line}: `{to}` has no layer", file.display())),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_import() {
    let found = named_modules("use crate::run::Supervisor;\nuse crate::{rng::stream, trace};\n");
    let names: Vec<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(names, ["run", "rng", "trace"]);
}
