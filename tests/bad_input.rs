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
    ("shard auto outside Slurm", "zoo --out DIR/z --shard auto", "--shard auto reads a Slurm array task's SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, and they are not set (outside Slurm, give --shard i/n)"),
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
    ("a cost curve of nothing", "bench scale --only height --dir DIR/s", "--only height: expected width, depth, examples or inputs"),
    ("zero benchmark threads", "bench peers --threads 0 --dir DIR/p", "--threads, --repeats and --w2-loop-models must be at least 1"),
    ("unknown node kind", "graph RUN --nodes blob", "invalid value 'blob' for '--nodes <NODES>'"),
    ("a circuit of nothing", "discover RUN --budget 0", "invalid value '0' for '--budget <BUDGET>': `0`: a circuit keeps at least 1 item"),
    ("a budget over the whole", "discover RUN --budget 150%", "invalid value '150%' for '--budget <BUDGET>': `150%`: a share of the items must lie in (0%, 100%]"),
    ("discovery in components", "discover RUN --nodes component", "evaluation ablates units; component graphs are read-only views: evaluate neuron or roi nodes"),
    ("a missing tensor", "import --weights FIX/mlp3.safetensors --spec DIR/missing.json --data FIX/mlp3.csv --out DIR/i", "FIX/mlp3.safetensors: tensor `9.weight` is missing (the file has 0.bias, 0.weight, 2.bias, 2.weight, 4.bias, 4.weight)"),
    ("shapes that do not chain", "import --weights FIX/mlp3.safetensors --spec DIR/chain.json --data FIX/mlp3.csv --out DIR/i", "FIX/mlp3.safetensors: shapes do not chain: layer 2's weight `2.weight` is [16, 16] and takes 16 inputs, but layer 1 gives 3"),
    ("outputs unlike PyTorch's", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --expect DIR/expect.csv --out DIR/i", "DIR/expect.csv: the imported model does not compute what PyTorch computed: output_1, row 3 (line 4): 0.5550056672802806 here, 0.56500567 expected (|Δ| 1.000e-2, 1.10e-2 of the column's largest |y|, above 1e-5); a transposed or misnamed tensor, or a wrong activation?"),
    ("a transposed square matrix", "import --weights DIR/transposed.safetensors --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --expect FIX/mlp3.expect.csv --out DIR/i", "FIX/mlp3.expect.csv: the imported model does not compute what PyTorch computed: output_0, row 468 (line 469): -0.7398234931540014 here, 0.562481999 expected (|Δ| 1.302e0, 1.49e0 of the column's largest |y|, above 1e-5); a transposed or misnamed tensor, or a wrong activation?"),
    ("NaN weights", "import --weights DIR/nan.safetensors --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --out DIR/i", "DIR/nan.safetensors: tensor `2.weight` holds NaN at index 17"),
    ("infinite weights", "import --weights DIR/inf.safetensors --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --out DIR/i", "DIR/inf.safetensors: tensor `4.bias` holds inf at index 1"),
    ("integer weights", "import --weights DIR/int.safetensors --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --out DIR/i", "DIR/int.safetensors: tensor `0.bias` is I32; weights must be F32, F64, F16 or BF16"),
    ("not a safetensors file", "import --weights DIR/notes.txt --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --out DIR/i", "DIR/notes.txt: not a safetensors file (corrupt or truncated): HeaderTooLarge"),
    ("an unknown activation", "import --weights FIX/mlp3.safetensors --spec DIR/activation.json --data FIX/mlp3.csv --out DIR/i", "DIR/activation.json: layer 0: unknown activation `swish`; known: relu, leaky_relu, identity, tanh, sigmoid, gelu, gelu_tanh, silu, softplus"),
    ("an unknown spec field", "import --weights FIX/mlp3.safetensors --spec DIR/field.json --data FIX/mlp3.csv --out DIR/i", "DIR/field.json: not a model spec: unknown field `dropout`, expected one of `format`, `version`, `inputs`, `layers`, `hidden`, `activation`, `slope`, `tasks`, `synthetic`, `epochs`, `batch`, `lr`, `seed` at line 1 column 10"),
    ("a spec that is not JSON", "import --weights FIX/mlp3.safetensors --spec DIR/notes.txt --data FIX/mlp3.csv --out DIR/i", "DIR/notes.txt: not a model spec: expected value at line 1 column 1"),
    ("a training spec to import", "import --weights FIX/mlp3.safetensors --spec DIR/train.json --data FIX/mlp3.csv --out DIR/i", "import needs the import form of a spec (`layers` naming each layer's tensors); `hidden` describes a model to train (`train --spec`)"),
    ("a column the data lacks", "import --weights FIX/mlp3.safetensors --spec DIR/column.json --data FIX/mlp3.csv --out DIR/i", "FIX/mlp3.csv: no column `y_zz` (columns: a, b, c, d, e, f, y_ab, y_cd, y_ef)"),
    ("a short row", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data DIR/short.csv --out DIR/i", "DIR/short.csv: line 4: 8 fields, the header has 9"),
    ("a long row", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data DIR/long.csv --out DIR/i", "DIR/long.csv: line 3: 10 fields, the header has 9"),
    ("a word in the data", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data DIR/word.csv --out DIR/i", "DIR/word.csv: column `c`, row 2 (line 3): `abc` is not a number"),
    ("NaN in the data", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data DIR/nan-data.csv --out DIR/i", "DIR/nan-data.csv: column `a`, row 3 (line 4): NaN is not finite"),
    ("an empty data file", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data DIR/empty.csv --out DIR/i", "DIR/empty.csv: the file is empty"),
    ("a header and no rows", "import --weights FIX/mlp3.safetensors --spec FIX/mlp3.spec.json --data DIR/header.csv --out DIR/i", "DIR/header.csv: the file has no rows"),
    ("a class label out of range", "import --weights FIX/digits10.safetensors --spec FIX/digits10.spec.json --data DIR/label.csv --out DIR/i", "DIR/label.csv: column `label`, row 4 (line 5): class label 12 is out of range: the model has 10 classes (0..9)"),
    ("a fractional class label", "import --weights FIX/digits10.safetensors --spec FIX/digits10.spec.json --data DIR/half-label.csv --out DIR/i", "DIR/half-label.csv: column `label`, row 2 (line 3): 2.5 is not a class label (an integer 0..9)"),
    ("a Sequential without activations", "import --weights FIX/mlp3.safetensors --data FIX/mlp3.csv --out DIR/i", "import needs --spec, or for a plain nn.Sequential --activations, --inputs and --tasks (or --classify)"),
    ("too few activations", "import --weights FIX/mlp3.safetensors --data FIX/mlp3.csv --out DIR/i --activations tanh,identity --inputs a,b,c,d,e,f --tasks y_ab,y_cd,y_ef", "--activations names 2 activations, but the state dict holds 3 Linear layers (0.weight, 2.weight, 4.weight): give one per layer, the last usually `identity`"),
    ("an expression of no input", "train --spec DIR/expr.json --out DIR/t", "DIR/expr.json: task `t`: expression `a*q` uses `q`, which is not an input (a)"),
    ("an import spec to train", "train --spec FIX/mlp3.spec.json --data FIX/mlp3.csv --out DIR/t", "train --spec needs the training form of a spec (`hidden` and `activation`); `layers` describes a model to import"),
];

fn circuitscope(args: &[String]) -> std::process::Output {
    // A terminal type that can draw, whatever the environment's (`watch` refuses TERM=dumb
    // before it looks at standard output).
    Command::new(env!("CARGO_BIN_EXE_circuitscope"))
        .args(args)
        .env("TERM", "xterm-256color")
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
    spec_fixtures(dir);
}

/// The PyTorch fixtures' directory.
fn fix() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pytorch")
}

/// A safetensors file of `(name, dtype, shape, little-endian bytes)` tensors.
fn safetensors(tensors: &[(String, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, dtype, shape, bytes) in tensors {
        let offsets = [data.len(), data.len() + bytes.len()];
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": offsets}),
        );
        data.extend_from_slice(bytes);
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// mlp3's tensors (read back from the fixture through the library) as f32 values.
fn mlp3_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let path = fix().join("mlp3.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let sd = circuitscope::model::import::read_state_dict(&bytes, &path).unwrap();
    [
        "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias",
    ]
    .iter()
    .map(|n| {
        let (shape, values) = &sd.tensors[*n];
        (
            n.to_string(),
            shape.clone(),
            values.iter().map(|&v| v as f32).collect(),
        )
    })
    .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Rewrites one tensor's values, or replaces it with `(dtype, bytes)`.
type TensorEdit<'a> = &'a dyn Fn(&str, &mut Vec<f32>) -> Option<(&'static str, Vec<u8>)>;

/// Broken copies of the PyTorch fixtures: specs, weights and data with one thing wrong each.
fn spec_fixtures(dir: &Path) {
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fix().join("mlp3.spec.json")).unwrap())
            .unwrap();
    let write_spec = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut s = spec.clone();
        edit(&mut s);
        std::fs::write(dir.join(name), serde_json::to_string(&s).unwrap()).unwrap();
    };
    write_spec("missing.json", &|s| {
        s["layers"][0]["weight"] = "9.weight".into()
    });
    write_spec("chain.json", &|s| {
        let l = s["layers"].as_array_mut().unwrap();
        l.swap(1, 2);
    });
    write_spec("activation.json", &|s| {
        s["layers"][0]["activation"] = "swish".into()
    });
    write_spec("column.json", &|s| s["tasks"][0]["target"] = "y_zz".into());
    // `dropout` first, so the error's column does not depend on the rest of the spec.
    std::fs::write(
        dir.join("field.json"),
        format!(
            "{{\"dropout\": 0.1, {}",
            &serde_json::to_string(&spec).unwrap()[1..]
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("train.json"),
        r#"{"format": "circuitscope-spec", "version": 1, "inputs": ["a", "b"], "hidden": [8], "activation": "relu", "tasks": [{"name": "ab", "target": "y_ab"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("expr.json"),
        r#"{"format": "circuitscope-spec", "version": 1, "inputs": ["a"], "hidden": [4], "activation": "relu", "tasks": [{"name": "t", "expr": "a*q"}], "synthetic": {"n_train": 10, "n_val": 10}}"#,
    )
    .unwrap();

    let tensors = mlp3_tensors();
    let write_weights = |name: &str, edit: TensorEdit| {
        let list: Vec<(String, &str, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, shape, v)| {
                let mut v = v.clone();
                match edit(n, &mut v) {
                    Some((dtype, bytes)) => (n.clone(), dtype, shape.clone(), bytes),
                    None => (n.clone(), "F32", shape.clone(), f32_bytes(&v)),
                }
            })
            .collect();
        std::fs::write(dir.join(name), safetensors(&list)).unwrap();
    };
    write_weights("nan.safetensors", &|n, v| {
        if n == "2.weight" {
            v[17] = f32::NAN;
        }
        None
    });
    write_weights("inf.safetensors", &|n, v| {
        if n == "4.bias" {
            v[1] = f32::INFINITY;
        }
        None
    });
    write_weights("int.safetensors", &|n, v| {
        (n == "0.bias").then(|| {
            (
                "I32",
                v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
            )
        })
    });
    // The square middle layer transposed: every shape still chains; only --expect sees it.
    write_weights("transposed.safetensors", &|n, v| {
        if n == "2.weight" {
            let w = v.clone();
            for r in 0..16 {
                for c in 0..16 {
                    v[r * 16 + c] = w[c * 16 + r];
                }
            }
        }
        None
    });

    let text = std::fs::read_to_string(fix().join("mlp3.csv")).unwrap();
    let lines: Vec<&str> = text.lines().take(40).collect();
    let write_data = |name: &str, edit: &dyn Fn(usize, &str) -> String| {
        let body: Vec<String> = lines.iter().enumerate().map(|(i, l)| edit(i, l)).collect();
        std::fs::write(dir.join(name), body.join("\n") + "\n").unwrap();
    };
    // Line numbers count the header as line 1.
    write_data("short.csv", &|i, l| {
        if i == 3 {
            l.rsplit_once(',').unwrap().0.to_string()
        } else {
            l.to_string()
        }
    });
    write_data("long.csv", &|i, l| {
        if i == 2 {
            format!("{l},0.5")
        } else {
            l.to_string()
        }
    });
    write_data("word.csv", &|i, l| {
        if i == 2 {
            let mut f: Vec<&str> = l.split(',').collect();
            f[2] = "abc";
            f.join(",")
        } else {
            l.to_string()
        }
    });
    write_data("nan-data.csv", &|i, l| {
        if i == 3 {
            format!("nan{}", &l[l.find(',').unwrap()..])
        } else {
            l.to_string()
        }
    });
    std::fs::write(dir.join("empty.csv"), "").unwrap();
    std::fs::write(dir.join("header.csv"), format!("{}\n", lines[0])).unwrap();
    // --expect with one output off by 0.01 in row 3.
    let expect = std::fs::read_to_string(fix().join("mlp3.expect.csv")).unwrap();
    let expect: Vec<String> = expect
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<String> = l.split(',').map(String::from).collect();
            if i == 3 {
                let k = f.len() - 2; // output_1
                f[k] = format!("{}", f[k].parse::<f64>().unwrap() + 0.01);
            }
            f.join(",")
        })
        .collect();
    std::fs::write(dir.join("expect.csv"), expect.join("\n") + "\n").unwrap();
    // Classifier data with a label of 12 in row 4 and of 2.5 in row 2.
    let labels = |bad_row: usize, bad: &str| -> String {
        let mut s = (0..8)
            .map(|i| format!("x{i}"))
            .collect::<Vec<_>>()
            .join(",")
            + ",label\n";
        for r in 1..=20 {
            let label = if r == bad_row {
                bad.to_string()
            } else {
                (r % 10).to_string()
            };
            s += &format!("{},{label}\n", ["0.5"; 8].join(","));
        }
        s
    };
    std::fs::write(dir.join("label.csv"), labels(4, "12")).unwrap();
    std::fs::write(dir.join("half-label.csv"), labels(2, "2.5")).unwrap();
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
    let fix_s = fix().to_string_lossy().into_owned();
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
                    .replace("FIX", &fix_s)
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
            .replace(&fix_s, "FIX")
            .replace(&format!("({log_len} bytes)"), "(LEN bytes)");
        let ok = (code == Some(1) || code == Some(2))
            && !err.contains("panicked")
            && err.lines().filter(|l| l.starts_with("error:")).count() == 1
            && first == *want;
        if !ok {
            failures.push(format!("{what}: `{cmd}` exited {code:?}: {first}\n{err}"));
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
