//! The bad-input sweep: every command line entry point fed wrong paths, wrong kinds of file,
//! wrong shapes, NaN data and absurd options. Each row gives one clear `error:` line naming the
//! problem and a non-zero exit (1; 2 for clap's own usage errors), writes nothing, and never
//! panics. The same table is in README.md ("Bad input"); a test keeps the two equal.

use std::path::Path;
use std::process::Command;

/// (what is wrong, the command line, the error line). In both, `RUN` is a finished `products`
/// run, `ZOO` a finished small zoo and `DIR` a scratch directory.
const CASES: &[(&str, &str, &str)] = &[
    ("zero epochs", "train --preset products --out DIR/a --epochs 0", "--epochs must be at least 1"),
    ("negative rate", "train --preset products --out DIR/a --lr -1", "--lr must be a positive finite number, got -1"),
    ("zero batch", "train --preset products --out DIR/a --batch 0", "--batch must be at least 1"),
    ("unknown preset", "train --preset resnet --out DIR/a", "invalid value 'resnet' for '--preset <PRESET>'"),
    ("no training examples", "train --preset products --out DIR/a --n-train 0", "--n-train must be at least 1"),
    ("an existing run as --out", "train --preset products --out RUN", "RUN already holds a run; pass --resume to continue it or choose another --out"),
    ("resume of nothing", "train --resume --out DIR/none", "DIR/none: no such run directory"),
    ("missing data file", "train --preset digits --out DIR/a --data DIR/none.csv", "DIR/none.csv: cannot read: No such file or directory (os error 2)"),
    ("CSV of the wrong width", "train --preset digits --out DIR/a --data DIR/narrow.csv", "DIR/narrow.csv: line 1: 4 columns, expected 65 (64 pixels and a label)"),
    ("NaN data", "train --preset digits --out DIR/a --data DIR/nan.csv", "DIR/nan.csv: line 1, column 1: `nan` is not finite"),
    ("log of a missing run", "events DIR/none", "DIR/none: no such run directory or event log"),
    ("a text file as a log", "events DIR/notes.txt", "DIR/notes.txt: not an event log: none of its 1 lines is a circuitscope event"),
    ("offset past the end", "events RUN --from 99999999", "RUN/events.jsonl: --from 99999999 is past the end of the log (LEN bytes)"),
    ("probe of a missing run", "probe DIR/none", "DIR/none: no such run directory"),
    ("probe of a zoo", "probe ZOO", "ZOO/run.json: missing: this is not a circuitscope run directory"),
    ("zero components", "probe RUN --pcs 0", "--pcs must be at least 1"),
    ("graph of zero examples", "graph RUN --examples 0", "--examples must be at least 1"),
    ("inspect before graph", "inspect RUN", "RUN/graph/graph.json: missing: no graph yet; build it with `circuitscope graph RUN`"),
    ("FGSM on a regression", "atypical RUN", "atypical: preset `products` is not a classifier; FGSM needs class labels (use digits or mnist)"),
    ("zoo of zero functions", "zoo --out DIR/z --functions 0", "--functions must be at least 2 (got 0): one function gives nothing to tell apart"),
    ("shard 5/3", "zoo --out DIR/z --shard 5/3", "--shard 5/3 is out of range: the index must be 0..2 for 3 shards"),
    ("shard that is no shard", "zoo --out DIR/z --shard x", "--shard `x`: expected `i/n` with 0 <= i < n, e.g. `0/4` for the first of four"),
    ("negative zoo rate", "zoo --out DIR/z --lr -1", "--lr must be a positive finite number, got -1"),
    ("merge of a missing shard", "zoo --out DIR/z --merge DIR/none", "DIR/none: no such zoo directory"),
    ("embed of a missing zoo", "embed DIR/none", "DIR/none: no such zoo directory"),
    ("embed of a run", "embed RUN", "RUN/zoo.json: missing: this is not a zoo (make one with `circuitscope zoo --out DIR`)"),
    ("uncompiled bottleneck", "embed ZOO --bottleneck 3", "--bottleneck 3: compiled widths are [2, 4, 8, 16, 32]"),
    ("mask ratio of 1.5", "embed ZOO --mask 1.5", "mask ratio must lie strictly between 0 and 1, got 1.5"),
    ("more functions than the zoo", "embed ZOO --functions 9", "--functions 9: the zoo has 2 functions; choose 2..=2"),
    ("watch of a missing run", "watch DIR/none", "DIR/none: no such run directory (a remote run is written [user@]host:RUN)"),
    ("watch without a terminal", "watch RUN", "watch draws on a terminal and standard output is not one; use `circuitscope events --follow RUN` for the events as text"),
    ("unknown optimisation level", "kernel install --opt 9 --no-install", "--opt 9: expected 0, 1, 2, 3, s or z"),
    ("benchmark of an unknown preset", "bench train --preset resnet", "invalid value 'resnet' for '--preset <PRESET>'"),
    ("peer side not installed", "bench peers --python DIR/none/python --dir DIR/p", "the peer side is not installed (DIR/none/python is missing): run `bash benches/peers/setup.sh` first (about 3.5 GB of downloads)"),
    ("zero benchmark threads", "bench peers --threads 0 --dir DIR/p", "--threads, --repeats and --w2-loop-models must be at least 1"),
    ("unknown node kind", "graph RUN --nodes blob", "invalid value 'blob' for '--nodes <NODES>'"),
];

fn circuitscope(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .args(args)
        .output()
        .unwrap()
}

fn fixtures(dir: &Path) {
    let ok = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_circuitscope"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
    ok(&[
        "train",
        "--preset",
        "products",
        "--out",
        &d("run"),
        "--epochs",
        "1",
        "--n-train",
        "640",
    ]);
    ok(&[
        "zoo",
        "--out",
        &d("zoo"),
        "--functions",
        "2",
        "--seeds",
        "3",
        "--epochs",
        "2",
        "--n-train",
        "256",
    ]);
    std::fs::write(dir.join("narrow.csv"), "1,2,3,4\n").unwrap();
    let nan: Vec<String> = std::iter::once("nan".to_string())
        .chain((0..63).map(|_| "0".into()))
        .chain(std::iter::once("3".into()))
        .collect();
    std::fs::write(dir.join("nan.csv"), nan.join(",") + "\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "a note, not a log\n").unwrap();
}

#[test]
fn every_bad_input_gives_one_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir);
    let run = dir.join("run");
    let log_len = std::fs::metadata(run.join("events.jsonl")).unwrap().len();
    let name = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let (run_s, zoo_s, dir_s) = (name("run"), name("zoo"), dir.to_string_lossy().into_owned());
    let listing = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = walk(d);
        v.sort();
        v
    };
    let before = listing(dir);
    let mut failures = Vec::new();
    for (what, cmd, want) in CASES {
        let args: Vec<String> = cmd
            .split(' ')
            .map(|a| {
                a.replace("RUN", &run_s)
                    .replace("ZOO", &zoo_s)
                    .replace("DIR", &dir_s)
            })
            .collect();
        let out = circuitscope(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code();
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("")
            .trim_start_matches("error: ")
            .replace(&run_s, "RUN")
            .replace(&zoo_s, "ZOO")
            .replace(&dir_s, "DIR")
            .replace(&format!("({log_len} bytes)"), "(LEN bytes)");
        let ok = (code == Some(1) || code == Some(2))
            && !err.contains("panicked")
            && err.lines().filter(|l| l.starts_with("error:")).count() == 1
            && first == *want;
        if !ok {
            failures.push(format!("{what}: `{cmd}` exited {code:?}: {err}"));
        }
        assert_eq!(listing(dir), before, "{what}: `{cmd}` wrote files");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn walk(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            let len = std::fs::metadata(&p).unwrap().len();
            out.push(format!("{} {len}", p.display()));
        }
    }
    out
}

#[test]
fn the_readme_lists_every_case() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (what, cmd, want) in CASES {
        let row = format!(
            "| {what} | `circuitscope {cmd}` | {} |",
            want.replace('|', "\\|")
        );
        assert!(readme.contains(&row), "README.md lacks the row\n{row}");
    }
}
