#!/usr/bin/env bash
# End to end in a real pseudo-terminal (tmux): `circuitscope watch` follows a run that a
# concurrent `train` is writing; the step on screen advances; `q` exits 0 and the terminal is
# restored (same stty settings as before, alternate screen left).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
tmp=$(mktemp -d)
trap 'for s in "$tmp"/tmux-*.sock; do tmux -S "$s" kill-server 2>/dev/null || true; done; kill $train 2>/dev/null || true; rm -rf "$tmp"' EXIT

if ! need tmux tmux; then
    [ "${CI:-}" = true ] && fail "tmux is missing and could not be installed"
    echo "e2e tmux: SKIPPED (no tmux; install it to run this test)" >&2
    exit 0
fi

run="$tmp/run"
start_train "$run" 200

cat >"$tmp/pane.sh" <<SH
stty -g >"$tmp/stty.before"
"$BIN" watch "$run"
echo "watch-exit=\$?" >"$tmp/exit"
stty -g >"$tmp/stty.after"
echo "shell again"
sleep 600
SH
tmux_start bash "$tmp/pane.sh"

wait_for '[ -n "$(shown_step)" ]' 60 || fail "no training step on screen"
first=$(shown_step)
wait_for '[ "$(shown_step)" -gt "$first" ]' 60 || fail "the step stayed at $first"
second=$(shown_step)
screen | grep -q '\[live\]' || fail "the header does not say live"
screen | grep -q 'train running' || fail "the header does not say the training runs"
echo "e2e tmux: step on screen advanced from $first to $second while train ran"

# The mouse is the dashboard's while it runs (clicks and the wheel), and a click on a tab
# shows it: a press and release on "Graph" in the tab bar (SGR mouse, 1-based columns).
mouse() { $T display -p -t e2e '#{mouse_any_flag}'; }
[ "$(mouse)" = 1 ] || fail "watch did not take the mouse"
col=$(screen | sed -n 2p | awk '{print index($0, "Graph")}')
printf '\033[<0;%d;2M\033[<0;%d;2m' "$col" "$col" | $T load-buffer - && $T paste-buffer -t e2e
wait_for 'screen | grep -q "fills with a .graph_edges. event\|graph: [0-9]* nodes"' 10 || fail "a click on the Graph tab did not show it"
echo "e2e tmux: the mouse is taken while watch runs; a click on the Graph tab shows it"

# Keys reach the app: go to the log view and back.
$T send-keys -t e2e 8
wait_for 'screen | grep -q "train_step"' 10 || fail "key 8 did not show the log"
$T send-keys -t e2e 1

# Under stress: a tiny terminal and back, then the log truncated and replaced under the
# follower; the dashboard keeps running and says what happened.
$T resize-window -t e2e -x 20 -y 10
wait_for 'screen | grep -q "1/8"' 10 || fail "no compact tab bar at 20x10"
$T resize-window -t e2e -x 100 -y 30
wait_for 'screen | grep -q " 1 Training  2 Probes"' 10 || fail "the full tab bar did not come back"
: >"$run/events.jsonl"
wait_for 'screen | grep -q "the log shrank from"' 10 || fail "truncation not reported"
cp "$run/events.jsonl" "$tmp/copy.jsonl" && mv "$tmp/copy.jsonl" "$run/events.jsonl"
wait_for 'screen | grep -q "the log was replaced"' 10 || fail "replacement not reported"
kill -0 "$train" 2>/dev/null || echo "e2e tmux: (train had finished before the truncation)"
echo "e2e tmux: resized to 20x10 and back, truncated and replaced the log: reported, no crash"
$T send-keys -t e2e q
wait_for '[ -s "$tmp/exit" ]' 20 || fail "q did not end watch"
grep -q 'watch-exit=0' "$tmp/exit" || fail "watch exited with $(cat "$tmp/exit")"
wait_for 'screen | grep -q "shell again"' 10 || fail "the shell did not come back"
cmp -s "$tmp/stty.before" "$tmp/stty.after" || fail "terminal settings differ after watch: $(cat "$tmp/stty.before") vs $(cat "$tmp/stty.after")"
screen | grep -q 'Training' && fail "the dashboard is still on screen (alternate screen not left)"
[ "$(mouse)" = 0 ] || fail "the mouse is still captured after q"
echo "e2e tmux: q exited 0 and the terminal was restored (the mouse given back)"

# SIGTERM and SIGHUP (a closed SSH session) end watch with the terminal restored, as q does.
for sig in TERM HUP; do
    tmux_start bash -c "stty -g >'$tmp/stty.before.$sig'; '$BIN' watch '$run'; echo \"exit=\$?\" >'$tmp/exit.$sig'; stty -g >'$tmp/stty.after.$sig'; echo shell again; sleep 600"
    wait_for 'screen | grep -q "Training"' 20 || fail "watch did not start (SIG$sig)"
    pid=$(pgrep -n -f "$BIN watch $run") || fail "no watch process"
    kill -$sig "$pid"
    wait_for "[ -s '$tmp/exit.$sig' ]" 10 || fail "SIG$sig did not end watch"
    want=$((128 + $(kill -l $sig)))
    grep -q "exit=$want" "$tmp/exit.$sig" || fail "watch ended by SIG$sig with $(cat "$tmp/exit.$sig"), expected $want"
    wait_for 'screen | grep -q "shell again"' 10 || fail "the shell did not come back after SIG$sig"
    cmp -s "$tmp/stty.before.$sig" "$tmp/stty.after.$sig" || fail "terminal settings differ after SIG$sig"
    screen | grep -q ' 1 Training' && fail "the dashboard is still on screen after SIG$sig"
    [ "$(mouse)" = 0 ] || fail "the mouse is still captured after SIG$sig"
    $T kill-server
    echo "e2e tmux: SIG$sig ended watch with status $want and the terminal restored"
done
