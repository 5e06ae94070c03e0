#!/usr/bin/env bash
# Runs everything CI runs, in order: formatting, lints, then every cargo test (unit, integration,
# doc tests, the CLI end to end). Later stages (terminal and SSH end-to-end tests, notebooks) are
# added here, so this one script stays the whole test suite. `.ci/run` calls exactly this.
#
# Needs a Rust toolchain with rustfmt and clippy (cargo fetches crates from crates.io); the
# end-to-end stages install tmux and openssh-server with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
stage() { printf '\n== %s (at %ds)\n' "$1" "$(($(date +%s) - t0))"; }
# pip install into python3, also where the system Python is "externally managed" (PEP 668).
pip_install() { python3 -m pip install -q --disable-pip-version-check "$@" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"; }

for tool in cargo rustfmt cargo-clippy; do
    command -v "$tool" >/dev/null || { echo "tests/run.sh: $tool not found; install a Rust toolchain with rustfmt and clippy (rustup component add rustfmt clippy)" >&2; exit 1; }
done

stage "format"
cargo fmt --all -- --check

stage "clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

stage "cargo test"
cargo test --locked --workspace

# The dashboard in a real pseudo-terminal, then over a real sshd on 127.0.0.1 (both use the
# debug binary `cargo test` just built; they install tmux / openssh-server with apt when
# missing, and under CI=true they must run).
stage "e2e: watch under tmux"
BIN=target/debug/circuitscope bash tests/e2e/tmux.sh

stage "e2e: watch over ssh"
BIN=target/debug/circuitscope bash tests/e2e/ssh.sh

# The Python logger (python/circuitscope_log): its unit tests (stdlib; numpy when present), then
# a numpy MLP trained through it while events --follow, analyze --follow and watch (tmux)
# follow it, the trainer and analyze killed and restarted. numpy comes from pip; torch is
# never installed here (6 GB): fixtures/pytorch-run holds a run written under real PyTorch.
stage "python logger: unit tests"
python3 -c 'import numpy' 2>/dev/null || pip_install numpy
python3 -m unittest discover -s python/tests

stage "e2e: a Python training run followed live"
BIN=target/debug/circuitscope bash tests/e2e/logger.sh

# A full disk and a read-only run directory (small tmpfs mounts; needs root, as CI has).
stage "e2e: resource errors"
BIN=target/debug/circuitscope bash tests/e2e/resources.sh

# The notebooks, executed headlessly with the evcxr kernel "Rust (circuitscope)". Installs
# nbclient/nbformat (pip) and evcxr_jupyter (cargo install, 10-30 minutes the first time);
# evcxr's builds go to one persistent cache shared by the notebooks.
stage "notebooks: install the kernel"
pip_install nbclient nbformat
target/debug/circuitscope kernel install

stage "notebooks: execute and check"
python3 tests/notebooks.py

stage "done"
echo "tests/run.sh: all stages passed in $(($(date +%s) - t0)) s"
