//! `circuitscope kernel install`: registers the Jupyter kernelspec "Rust (circuitscope)" — the
//! evcxr kernel with circuitscope and its display crate (`kernel/`) preloaded, building into
//! one persistent cache so every notebook shares the compiled dependencies.
//!
//! It writes only the kernelspec directory and the cache directory it is given, and installs
//! `evcxr_jupyter` with cargo only when it is missing and allowed to.

use circuitscope::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What "kernel install" does.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The circuitscope source tree (holding kernel/).
    pub source: PathBuf,
    /// Jupyter's data directory (kernelspecs go to <dir>/kernels/circuitscope).
    pub data_dir: PathBuf,
    /// evcxr's build directory, shared by every notebook.
    pub cache: PathBuf,
    /// Run "cargo install evcxr_jupyter --locked" when it is missing.
    pub install_evcxr: bool,
    /// Optimisation level of the notebook's builds ("0" builds fastest, "2" runs fastest).
    pub opt_level: String,
}

/// The kernelspec's name ("jupyter kernelspec list", "--kernel circuitscope").
pub const KERNEL_NAME: &str = "circuitscope";

/// Jupyter's user data directory: $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else
/// ~/.local/share/jupyter.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("JUPYTER_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("jupyter");
    }
    home().join(".local/share/jupyter")
}

/// The default shared build cache: /var/tmp/circuitscope-evcxr-<user>.
///
/// Not under the home directory on purpose: evcxr links each cell against the toolchain's
/// libstd-*.so through a relative RUNPATH, and rustc 1.95 computes that path one .. too
/// far when the build directory and ~/.rustup share an ancestor below / (the cell then
/// fails to load: "dlopen failed"). Under /var/tmp the extra .. stops at / and is
/// harmless.
pub fn default_cache() -> PathBuf {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "user".into());
    PathBuf::from(format!("/var/tmp/circuitscope-evcxr-{user}"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// evcxr_jupyter on PATH or in cargo's bin directory.
pub fn find_evcxr() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(
        std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".cargo"))
            .join("bin"),
    );
    dirs.into_iter()
        .map(|d| d.join("evcxr_jupyter"))
        .find(|p| p.is_file())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create directory", e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, "cannot write", e))
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Installs the kernelspec; returns its directory.
pub fn install(o: &InstallOptions) -> Result<PathBuf> {
    let kernel_src = o.source.join("kernel");
    if !kernel_src.join("Cargo.toml").is_file() {
        return Err(Error::Invalid(format!(
            "{}: not the circuitscope source tree (no kernel/Cargo.toml); pass --source DIR",
            o.source.display()
        )));
    }
    let kernel_src = kernel_src
        .canonicalize()
        .map_err(|e| Error::io(&kernel_src, "cannot resolve", e))?;
    let evcxr = match find_evcxr() {
        Some(p) => p,
        None if o.install_evcxr => {
            eprintln!("circuitscope: installing evcxr_jupyter with cargo (10-30 minutes on 2 cores)");
            let status = Command::new("cargo")
                .args(["install", "evcxr_jupyter", "--locked"])
                .status()
                .map_err(|e| Error::io("cargo", "cannot run", e))?;
            if !status.success() {
                return Err(Error::Invalid(format!(
                    "`cargo install evcxr_jupyter --locked` failed ({status})"
                )));
            }
            find_evcxr().ok_or_else(|| {
                Error::Invalid("evcxr_jupyter was installed but is not on PATH or in ~/.cargo/bin".into())
            })?
        }
        None => {
            return Err(Error::Invalid(
                "evcxr_jupyter not found; install it with `cargo install evcxr_jupyter --locked` or drop --no-install".into(),
            ))
        }
    };
    let dir = o.data_dir.join("kernels").join(KERNEL_NAME);
    let config = dir.join("evcxr");
    std::fs::create_dir_all(&o.cache)
        .map_err(|e| Error::io(&o.cache, "cannot create directory", e))?;
    // Notebook builds resolve the same crate versions the tests ran with: evcxr builds in
    // `cache`, and cargo there starts from this lock file (adding only evcxr's own crate).
    let lock = o.source.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, o.cache.join("Cargo.lock"))
            .map_err(|e| Error::io(&lock, "cannot copy into the cache", e))?;
    }
    let kernel = serde_json::json!({
        "argv": [evcxr, "--control_file", "{connection_file}"],
        "display_name": "Rust (circuitscope)",
        "language": "rust",
        "interrupt_mode": "message",
        "env": { "EVCXR_CONFIG_DIR": config },
    });
    write(
        &dir.join("kernel.json"),
        &serde_json::to_string_pretty(&kernel).expect("serialises"),
    )?;
    write(
        &config.join("evcxr.toml"),
        &format!(
            "# Written by `circuitscope kernel install`.\n[evcxr]\ntmpdir = {}\nopt_level = {}\n\n[dependencies]\ncircuitscope-kernel = {{ path = {} }}\n",
            toml_str(&o.cache.to_string_lossy()),
            toml_str(&o.opt_level),
            toml_str(&kernel_src.to_string_lossy()),
        ),
    )?;
    write(
        &config.join("prelude.rs"),
        "use circuitscope_kernel::prelude::*;\n",
    )?;
    Ok(dir)
}

#[derive(Debug, clap::Subcommand)]
pub enum KernelWhat {
    /// Register the kernelspec (installing evcxr_jupyter with cargo if it is missing).
    Install {
        /// The circuitscope source tree (holding kernel/); default: the one this was built from.
        #[arg(long)]
        source: Option<PathBuf>,
        /// Jupyter's data directory (default: $JUPYTER_DATA_DIR or ~/.local/share/jupyter).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// evcxr's shared build directory (default: /var/tmp/circuitscope-evcxr-$USER).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Fail instead of running "cargo install evcxr_jupyter --locked" when it is missing.
        #[arg(long)]
        no_install: bool,
        /// Optimisation level of notebook builds: 0 builds fastest, 2 runs fastest.
        #[arg(long, default_value = "1")]
        opt: String,
        /// Do not build the notebook cache now (the first notebook's kernel start will).
        #[arg(long)]
        no_warm: bool,
    },
}

pub fn run(what: KernelWhat) -> Result<()> {
    let KernelWhat::Install {
        source,
        data_dir,
        cache,
        no_install,
        opt,
        no_warm,
    } = what;
    if !["0", "1", "2", "3", "s", "z"].contains(&opt.as_str()) {
        return Err(Error::Invalid(format!(
            "--opt {opt}: expected 0, 1, 2, 3, s or z"
        )));
    }
    let dir = install(&InstallOptions {
        source: source.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        data_dir: data_dir.unwrap_or_else(default_data_dir),
        cache: cache.unwrap_or_else(default_cache),
        install_evcxr: !no_install,
        opt_level: opt,
    })?;
    println!(
        "installed the kernel \"Rust (circuitscope)\" (name `{}`) in {}",
        KERNEL_NAME,
        dir.display()
    );
    if !no_warm {
        warm(&dir)?;
    }
    Ok(())
}

/// Starts the installed kernel once and runs a cell that uses circuitscope's display crate,
/// so evcxr builds its shared cache now — outside any notebook's kernel timeout — and every
/// later kernel start reuses it. Uses Python's jupyter_client (what nbclient and Jupyter run
/// kernels with); without it, says so and leaves the build to the first kernel start.
const WARM: &str = r#"
import sys
try:
    import jupyter_client
except ImportError:
    sys.exit(3)
km = jupyter_client.KernelManager(kernel_name=sys.argv[1])
km.start_kernel()
kc = km.client()
kc.start_channels()
try:
    kc.wait_for_ready(timeout=24 * 3600)
    reply = kc.execute_interactive(
        "let _ = circuitscope_kernel::Svg(String::new()); circuitscope::model::Preset::Products",
        timeout=24 * 3600, output_hook=lambda m: None)
    ok = reply["content"]["status"] == "ok"
    if not ok:
        print("\n".join(reply["content"].get("traceback", [])), file=sys.stderr)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
sys.exit(0 if ok else 1)
"#;

fn warm(kernel_dir: &Path) -> Result<()> {
    let data_dir = kernel_dir
        .parent()
        .and_then(Path::parent)
        .expect("kernels/<name> under the data directory");
    let started = std::time::Instant::now();
    let mut child = Command::new("python3")
        .args(["-c", WARM, KERNEL_NAME])
        .env("JUPYTER_DATA_DIR", data_dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io("python3", "cannot run (to build the notebook cache)", e))?;
    eprintln!("circuitscope: building the notebook cache (evcxr compiles circuitscope once; minutes on 2 cores)");
    let mut next_line = 30;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("python3", "cannot wait for", e))?
        {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let secs = started.elapsed().as_secs();
        if secs >= next_line {
            eprintln!(
                "circuitscope: building the notebook cache: {}m{:02}s so far",
                secs / 60,
                secs % 60
            );
            next_line += 30;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    match status.code() {
        Some(0) => {
            println!("notebook cache built in {secs:.0} s: kernel starts now reuse it");
            Ok(())
        }
        Some(3) => {
            println!("notebook cache not built: python3 has no jupyter_client (`pip install jupyter_client`); the first notebook's kernel start will build it");
            Ok(())
        }
        _ => Err(Error::Invalid(format!(
            "building the notebook cache failed after {secs:.0} s ({status}); the kernel's own error is above"
        ))),
    }
}
