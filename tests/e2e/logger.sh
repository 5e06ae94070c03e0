#!/usr/bin/env bash
# End to end with the Python logger (no torch: a numpy MLP, examples/numpy_products.py):
# 1. while it trains, `events --follow` saves the stream, `analyze --follow` keeps up with its
#    checkpoints and `watch` (tmux) shows them; the saved streams equal the log byte for byte,
#    analyze prints one `step N` line per checkpoint and skips none, and the Emergence view
#    shows one point per checkpoint;
# 2. the trainer killed mid-write (a torn last line): every reader accepts the log, and a
#    restarted trainer appends `resumed`;
# 3. `analyze` killed and restarted redoes no checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
tmp=$(mktemp -d)
pids=()
trap 'for s in "$tmp"/tmux-*.sock; do tmux -S "$s" kill-server 2>/dev/null || true; done; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

if ! need tmux tmux; then
    [ "${CI:-}" = true ] && fail "tmux is missing and could not be installed"
    echo "e2e logger: SKIPPED (no tmux; install it to run this test)" >&2
    exit 0
fi
if ! python3 -c 'import numpy' 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check numpy >/dev/null 2>&1 ||
        python3 -m pip install -q --disable-pip-version-check --break-system-packages numpy >/dev/null 2>&1 || true
    python3 -c 'import numpy' 2>/dev/null || fail "numpy is missing and could not be installed"
fi

# --- 1. live: a trainer writing a checkpoint about every 1.5 s, three followers ---------------
run="$tmp/run"
steps=1200 every=100 # 12 checkpoints
python3 examples/numpy_products.py --out "$run" --steps $steps --checkpoint-every $every \
    --eval-every $every --pace 0.025 >"$tmp/train.out" 2>&1 &
trainer=$!
pids+=($trainer)
wait_for "[ -s '$run/events.jsonl' ]" 30 || fail "the logger never started its log"
"$BIN" events --follow "$run" >"$tmp/saved.jsonl" 2>"$tmp/events.err" &
follower=$!
pids+=($follower)
"$BIN" analyze --follow --examples 200 "$run" >"$tmp/analyze.out" 2>&1 &
analyzer=$!
pids+=($analyzer)
cat >"$tmp/pane.sh" <<SH
"$BIN" watch "$run" --save "$tmp/watch-saved.jsonl"
echo "watch-exit=\$?" >"$tmp/exit"
sleep 600
SH
tmux_start bash "$tmp/pane.sh"
wait_for '[ -n "$(shown_step)" ]' 60 || fail "no training step on screen"

wait $trainer || fail "the trainer failed: $(cat "$tmp/train.out")"
wait $follower || fail "events --follow failed: $(cat "$tmp/events.err")"
wait $analyzer || fail "analyze --follow failed: $(cat "$tmp/analyze.out")"
cmp "$tmp/saved.jsonl" "$run/events.jsonl" || fail "the stream events --follow saved differs from the log"
checkpoints=$(ls "$run/checkpoints" | wc -l)
[ "$checkpoints" -eq $((steps / every)) ] || fail "$checkpoints checkpoints, expected $((steps / every))"
analysed=$(grep -c '^step [0-9]*  CPR' "$tmp/analyze.out" || true)
skipped=$(grep -c '^step [0-9]*  skipped' "$tmp/analyze.out" || true)
[ "$skipped" -eq 0 ] || fail "analyze skipped $skipped checkpoints: $(cat "$tmp/analyze.out")"
[ "$analysed" -eq "$checkpoints" ] || fail "analyze printed $analysed lines for $checkpoints checkpoints: $(cat "$tmp/analyze.out")"
grep -q "^step $steps  CPR 0\.[0-9]* (chance [-0-9.]*)  faithfulness at 10% " "$tmp/analyze.out" || fail "the last checkpoint has no CPR: $(tail -3 "$tmp/analyze.out")"
echo "e2e logger: $checkpoints checkpoints written by the Python logger, $analysed analysed live, none skipped; saved stream = log"
echo "e2e logger: $(tail -2 "$tmp/analyze.out" | head -1)"

# The dashboard: the Emergence view (tab 6) holds one point per checkpoint.
$T send-keys -t e2e 6
wait_for "screen | grep -q '$checkpoints checkpoints analysed'" 20 || fail "the Emergence view does not show $checkpoints checkpoints"
$T send-keys -t e2e 4
wait_for "screen | grep -q 'Graph'" 10 || fail "no Graph view"
$T send-keys -t e2e q
wait_for '[ -s "$tmp/exit" ]' 20 || fail "q did not end watch"
grep -q 'watch-exit=0' "$tmp/exit" || fail "watch exited with $(cat "$tmp/exit")"
cmp "$tmp/watch-saved.jsonl" "$run/events.jsonl" || fail "the stream watch saved differs from the log"
echo "e2e logger: watch showed $checkpoints emergence points; its saved stream = log"

# --- 2. the trainer killed mid-write ---------------------------------------------------------
run2="$tmp/run2"
python3 examples/numpy_products.py --out "$run2" --steps 100000 --checkpoint-every 50 --pace 0.001 >/dev/null 2>&1 &
trainer=$!
pids+=($trainer)
wait_for "[ \$(ls '$run2/checkpoints' 2>/dev/null | wc -l) -ge 3 ]" 60 || fail "no checkpoints from the second trainer"
kill -9 $trainer
wait $trainer 2>/dev/null || true
# What a kill inside a write leaves: half a line with no newline.
printf '{"v":1,"time":1.0,"step":9,"kind":"train_st' >>"$run2/events.jsonl"
"$BIN" events "$run2" >"$tmp/killed.jsonl" || fail "events refused the killed trainer's log"
[ "$(wc -l <"$tmp/killed.jsonl")" -eq "$(($(wc -l <"$run2/events.jsonl")))" ] || fail "events did not print every complete line"
grep -q 'train_st$' "$tmp/killed.jsonl" && fail "events printed the torn line"
"$BIN" analyze --every 100000 --examples 100 "$run2" >"$tmp/analyze2.out" 2>&1 || fail "analyze refused the killed trainer's run: $(cat "$tmp/analyze2.out")"
python3 examples/numpy_products.py --out "$run2" --steps 100 --checkpoint-every 50 >/dev/null 2>&1 || fail "the restarted trainer failed"
python3 - "$run2/events.jsonl" <<'PY' || fail "the restart did not close the torn line and append resumed"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
torn = [i for i, l in enumerate(lines) if l.endswith('"train_st')]
assert len(torn) == 1, torn
after = [json.loads(l)["kind"] for l in lines[torn[0] + 1:]]
assert after[:2] == ["run_start", "resumed"], after[:3]
PY
echo "e2e logger: a trainer killed mid-write left a log every reader accepts; the restart appended resumed"

# --- 3. analyze killed and restarted ---------------------------------------------------------
before=$(grep -c '"kind":"emergence"' "$run/analysis/events.jsonl")
rm -rf "$run/analysis"
"$BIN" analyze --examples 200 "$run" >"$tmp/a1.out" 2>&1 &
analyzer=$!
pids+=($analyzer)
wait_for "[ \$(grep -c '^step ' '$tmp/a1.out') -ge 3 ]" 120 || fail "analyze did not get going: $(cat "$tmp/a1.out")"
kill -9 $analyzer
wait $analyzer 2>/dev/null || true
done_before=$(grep -c '"kind":"emergence"' "$run/analysis/events.jsonl")
"$BIN" analyze --examples 200 "$run" >"$tmp/a2.out" 2>&1 || fail "the restarted analyze failed: $(cat "$tmp/a2.out")"
python3 - "$run/analysis/events.jsonl" "$checkpoints" <<'PY' || fail "the restarted analyze redid a checkpoint or missed one"
import json, sys
steps = []
for l in open(sys.argv[1]):
    try:
        e = json.loads(l)
    except ValueError:
        continue  # the line the kill tore
    if e["kind"] == "emergence":
        steps.append(e["checkpoint_step"])
assert len(steps) == len(set(steps)), f"redone: {steps}"
assert len(steps) == int(sys.argv[2]), steps
PY
echo "e2e logger: analyze killed after $done_before of $before checkpoints; the restart did the other $((before - done_before)) and redid none"
