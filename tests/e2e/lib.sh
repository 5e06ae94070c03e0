# Shared helpers of the end-to-end scripts (sourced, not run).

# The circuitscope binary under test (tests/run.sh builds it with `cargo test`).
BIN=$(realpath "${BIN:-target/debug/circuitscope}")
[ -x "$BIN" ] || { echo "e2e: $BIN not built (run cargo build first)" >&2; exit 1; }

fail() { echo "e2e FAILED: $*" >&2; [ -n "${T:-}" ] && { echo "--- screen:" >&2; screen >&2 || true; }; exit 1; }

# Installs Debian packages when allowed: always under CI=true, else only as root.
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "e2e: installing $2 (apt-get)"
        (apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; }) || true
    fi
    command -v "$1" >/dev/null
}

# tmux on a private socket, so a user's own tmux is never touched.
# Each session gets a socket (a server) of its own.
tmux_n=0
tmux_start() { # tmux_start COMMAND...
    tmux_n=$((tmux_n + 1))
    T="tmux -S $tmp/tmux-$tmux_n.sock"
    $T new-session -d -s e2e -x 100 -y 30 "$@"
}
screen() { $T capture-pane -p -t e2e; }

# Polls `$1` (a shell condition) every 0.2 s for at most $2 seconds.
wait_for() {
    local cond=$1 limit=$2 i=0
    while ! eval "$cond"; do
        i=$((i + 1))
        [ $i -gt $((limit * 5)) ] && return 1
        sleep 0.2
    done
}

# The step the dashboard's header shows (empty before the first training step).
shown_step() { screen | sed -n '1s/.*  step \([0-9]*\).*/\1/p'; }

# Starts a `products` training of EPOCHS epochs into RUN in the background (pid in $train)
# and waits until its event log exists. On the dfdx engine: the tests need a run that lasts
# through a dropped and restored connection, and the fused default finishes 3x sooner.
start_train() { # start_train RUN EPOCHS
    "$BIN" train --preset products --engine dfdx --out "$1" --epochs "$2" --n-train 4000 --log-every 5 \
        --checkpoint-every 100000 >/dev/null 2>&1 &
    train=$!
    wait_for "[ -s '$1/events.jsonl' ]" 60 || fail "train never started its log"
}
