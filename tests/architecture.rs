//! The architecture's rules, checked on the source (ARCHITECTURE.md states them): which module
//! may import which, stages that never touch files or events, clap only in the binary, and no
//! source file over 600 lines. Each rule is also tested to catch what it forbids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the library and the modules it may import (besides the crate
/// root's `Error`, `Result` and macros). The order is the data flow, lowest first.
const RULES: &[(&str, &[&str])] = &[
    ("numeric", &[]),
    ("params", &[]),
    ("data", &["numeric", "params"]),
    ("model", &["data", "numeric", "params"]),
    ("autodiff", &["data", "model", "numeric", "params"]),
    ("probe", &["data", "model", "numeric", "params"]),
    ("graph", &["data", "model", "numeric", "params", "probe"]),
    (
        "eval",
        &["data", "graph", "model", "numeric", "params", "probe"],
    ),
    ("embed", &["data", "model", "numeric", "params", "probe"]),
    (
        "runlog",
        &[
            "autodiff", "data", "embed", "eval", "graph", "model", "numeric", "params", "probe",
        ],
    ),
    (
        "bench",
        &[
            "autodiff", "data", "embed", "eval", "graph", "model", "numeric", "params", "probe",
            "runlog",
        ],
    ),
    (
        "tui",
        &[
            "autodiff", "data", "embed", "eval", "graph", "model", "numeric", "params", "probe",
            "runlog",
        ],
    ),
];

/// Names the crate root holds besides the modules: always importable.
const ROOT: &[&str] = &[
    "Error", "Result", "invalid", "param", "choices", "polars", "error",
];

/// Stages that are pure functions of a model, data and options.
const PURE: &[&str] = &["probe", "graph", "eval"];

/// What a pure stage must never contain (code, comments aside).
const IMPURE: &[&str] = &[
    "std::fs",
    "File::",
    "EventLog",
    ".emit(",
    "OpenOptions",
    "runlog",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The source without comments (line comments and doc comments), string contents kept.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after every `crate::` in `text` (`crate::{a, b::c}` gives a and b).
fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        // `$crate::` inside a macro is the macro's own crate root, not a module.
        let macro_root = rest[..i].ends_with('$');
        rest = &rest[i + "crate::".len()..];
        if macro_root {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(first_segment(&item));
        } else {
            out.insert(first_segment(rest));
        }
    }
    out.remove("");
    out
}

fn first_segment(s: &str) -> String {
    s.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The library's top-level module a file belongs to (`src/graph/ig.rs` → `graph`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root().join("src")).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every forbidden import in the library: `(file, imported module)`.
fn violations() -> Vec<(String, String)> {
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let mut bad = Vec::new();
    for f in rust_files(&root().join("src")) {
        let Some(m) = module_of(&f) else { continue };
        if ["lib", "main", "cli", "error"].contains(&m.as_str()) {
            continue;
        }
        let allowed = rules
            .get(m.as_str())
            .unwrap_or_else(|| panic!("module `{m}` has no rule in RULES and ARCHITECTURE.md"));
        let text = code(&std::fs::read_to_string(&f).unwrap());
        for dep in crate_imports(&text) {
            if dep != m && !ROOT.contains(&dep.as_str()) && !allowed.contains(&dep.as_str()) {
                bad.push((f.display().to_string(), dep));
            }
        }
    }
    bad
}

#[test]
fn imports_run_one_way_down_the_pipeline() {
    let bad = violations();
    assert!(bad.is_empty(), "imports against ARCHITECTURE.md: {bad:?}");
}

#[test]
fn the_import_parser_sees_what_it_must_forbid() {
    let found = crate_imports(
        "use crate::runlog::Event;\nuse crate::{tui::App, model::{Arch, view::Layer}, Result};\nlet x = crate::bench::peak::measure(); $crate::params::Valid",
    );
    let want: BTreeSet<String> = ["runlog", "tui", "model", "Result", "bench"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
    assert_eq!(
        code("// use crate::tui;\n    /// crate::bench\nuse crate::data;"),
        "\n\nuse crate::data;"
    );
    // The table forbids what runs back up: a stage importing the run layer or the dashboard.
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    for stage in ["data", "model", "probe", "graph", "eval", "embed"] {
        for above in ["runlog", "tui", "bench"] {
            assert!(!rules[stage].contains(&above), "{stage} may import {above}");
        }
    }
}

#[test]
fn pure_stages_never_touch_files_or_events() {
    let mut bad = Vec::new();
    for m in PURE {
        for f in rust_files(&root().join("src").join(m)) {
            let text = code(&std::fs::read_to_string(&f).unwrap());
            for word in IMPURE {
                if text.contains(word) {
                    bad.push(format!("{}: {word}", f.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn clap_lives_only_in_the_binary() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(!code(&lib).contains("mod cli"), "lib.rs declares cli");
    let mut bad = Vec::new();
    for f in rust_files(&root().join("src")) {
        let m = module_of(&f).unwrap_or_default();
        if m == "cli" || m == "main" {
            continue;
        }
        if code(&std::fs::read_to_string(&f).unwrap()).contains("clap") {
            bad.push(f.display().to_string());
        }
    }
    assert!(bad.is_empty(), "library files naming clap: {bad:?}");
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut long = Vec::new();
    for dir in ["src", "kernel/src"] {
        for f in rust_files(&root().join(dir)) {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > 600 {
                long.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(long.is_empty(), "{long:?}");
}

#[test]
fn architecture_md_states_the_same_rules() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for (m, deps) in RULES {
        let row = format!(
            "| `{m}` | {} |",
            if deps.is_empty() {
                "—".to_string()
            } else {
                deps.iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        assert!(doc.contains(&row), "ARCHITECTURE.md lacks the row\n{row}");
    }
}
