#!/usr/bin/env bash
# End to end over a real SSH connection: a throwaway sshd on 127.0.0.1 (Debian's
# openssh-server, keys made here), `circuitscope watch user@127.0.0.1:RUN` follows a run that a
# concurrent `train` writes; the connection is killed mid-run; the dashboard says so,
# reconnects from its last offset, and its saved copy of the stream (--save) equals the run's
# log byte for byte: no event lost, none twice. Also: an unreachable host and a missing remote
# run give a clear message on screen. Under CI=true it must run; elsewhere, without sshd, it
# is skipped with a loud message.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
tmp=$(mktemp -d)
sshd_pid=
train=
cleanup() {
    for s in "$tmp"/tmux-*.sock; do tmux -S "$s" kill-server 2>/dev/null || true; done
    [ -n "$train" ] && kill "$train" 2>/dev/null || true
    [ -n "$sshd_pid" ] && { pkill -KILL -P "$sshd_pid" 2>/dev/null || true; kill "$sshd_pid" 2>/dev/null || true; }
    pkill -f "events --follow.* --offsets --from [0-9]* '$tmp" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

skip() {
    [ "${CI:-}" = true ] && fail "$1 (CI=true: this test must run)"
    echo "" >&2
    echo "!!! e2e ssh: SKIPPED: $1" >&2
    echo "!!! install openssh-server and tmux (or run as root with apt) to run it" >&2
    exit 0
}
need tmux tmux || skip "tmux is missing"
SSHD=/usr/sbin/sshd
[ -x $SSHD ] || need sshd openssh-server || true
[ -x $SSHD ] || SSHD=$(command -v sshd || true)
[ -n "$SSHD" ] && [ -x "$SSHD" ] || skip "sshd is missing and could not be installed"
command -v ssh >/dev/null || need ssh openssh-client || skip "ssh is missing"

# Throwaway keys and config; sshd runs in the foreground of a background job.
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/client_key"
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
chmod 600 "$tmp/authorized_keys"
mkdir -p /run/sshd 2>/dev/null || true
port=$((20000 + RANDOM % 20000))
user=$(id -un)
cat >"$tmp/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PidFile $tmp/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $user
LogLevel ERROR
CFG
$SSHD -t -f "$tmp/sshd_config" || fail "sshd rejects the test config"
$SSHD -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" &
sshd_pid=$!
SSH="ssh -p $port -i $tmp/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=5"
wait_for "$SSH $user@127.0.0.1 true 2>/dev/null" 20 || fail "cannot log in to the test sshd: $(cat "$tmp/sshd.log")"

run="$tmp/run"
start_train "$run" 120

cat >"$tmp/pane.sh" <<SH
"$BIN" watch --ssh "$SSH" --remote-bin "$BIN" --save "$tmp/saved.jsonl" "$user@127.0.0.1:$run"
echo "watch-exit=\$?" >"$tmp/exit"
sleep 600
SH
tmux_start bash "$tmp/pane.sh"
wait_for 'screen | grep -q "\[live\]"' 30 || fail "the remote stream never went live"
wait_for '[ -n "$(shown_step)" ] && [ "$(shown_step)" -gt 500 ]' 60 || fail "no training steps arrived over ssh"
before=$(wc -l <"$tmp/saved.jsonl")

# Kill the connection: the per-connection sshd processes are children of the listener.
pkill -KILL -P "$sshd_pid" || fail "no ssh connection to kill"
wait_for 'screen | grep -q "connection lost"' 15 || fail "the screen does not say the connection dropped"
echo "e2e ssh: connection killed after $before lines; the screen says: $(screen | grep -o 'connection lost.*' | head -2 | tr '\n' ' ')"
wait_for 'screen | grep -q "\[live\]"' 30 || fail "it did not reconnect"
[ "$(kill -0 $train 2>/dev/null && echo running)" = running ] || fail "train ended before the reconnection: the test proves nothing (make it longer)"
echo "e2e ssh: reconnected while train was still running"

wait $train || fail "train failed"
train=
wait_for 'screen | grep -q "train finished"' 60 || fail "run_end not shown as finished"
wait_for 'screen | grep -q "stream ended"' 30 || fail "the remote follower did not end after run_end"
# The run's analysis log arrives over the same ssh beside its own: the Emergence view fills.
"$BIN" analyze --every 40 --examples 100 --no-interventions "$run" >"$tmp/analyze.out" 2>&1 || fail "analyze failed: $(cat "$tmp/analyze.out")"
analysed=$(grep -c '^step ' "$tmp/analyze.out")
$T send-keys -t e2e 6
wait_for "screen | grep -q '$analysed checkpoints analysed'" 30 || fail "the Emergence view did not show the $analysed analysed checkpoints over ssh"
echo "e2e ssh: the analysis log followed over ssh: $analysed emergence points on screen"
$T send-keys -t e2e q
wait_for '[ -s "$tmp/exit" ]' 20 || fail "q did not end watch"
grep -q 'watch-exit=0' "$tmp/exit" || fail "watch exited with $(cat "$tmp/exit")"
after=$(wc -l <"$tmp/saved.jsonl")
cmp "$tmp/saved.jsonl" "$run/events.jsonl" || fail "the saved stream differs from the run's log (a gap or a duplicate)"
[ "$before" -lt "$after" ] || fail "nothing arrived after the reconnection"
echo "e2e ssh: the stream equals the log: $after lines, none lost or repeated across the reconnection"
$T kill-server

# Two runs at once, one local and one over ssh: the run list shows both, and the Training view
# draws both runs' loss curves, each in its colour (run 1 cyan, run 2 magenta) with its name in
# the legend.
other="$tmp/other"
"$BIN" train --preset products --out "$other" --epochs 15 --n-train 2000 --log-every 5 \
    --checkpoint-every 100000 >/dev/null 2>&1 || fail "the second training failed"
tmux_start bash -c "\"$BIN\" watch --ssh \"$SSH\" --remote-bin \"$BIN\" \"$other\" \"$user@127.0.0.1:$run\"; sleep 600"
wait_for "[ \$(screen | grep -c 'train finished') -ge 2 ]" 30 || fail "the run list does not show both runs finished"
screen | grep -q "$user@127.0.0.1:$run" || fail "the remote run is not named in the run list"
$T send-keys -t e2e 1
wait_for 'screen | grep -q "loss of each selected run"' 10 || fail "the Training view does not lay the two runs over each other"
legend=$(screen | grep -c "│$other\|│$user@127.0.0.1")
[ "$legend" -ge 2 ] || fail "the legend does not name both runs"
# A braille glyph right after the run's colour (ANSI colour $1, which tmux writes as SGR 3$1 or
# 38;5;$1): a drawn curve. capture-pane -e keeps the colours.
drawn() { $T capture-pane -e -p -t e2e | LC_ALL=C.UTF-8 grep -qP "\\e\\[(3$1|38;5;$1)m[\\x{2801}-\\x{28ff}]"; }
drawn 6 || fail "run 1's curve (cyan) is not drawn"
drawn 5 || fail "run 2's curve (magenta, over ssh) is not drawn"
$T send-keys -t e2e q
$T kill-server
echo "e2e ssh: two runs, one local and one over ssh, listed and both curves drawn"

# An unreachable host: the screen says why and that it retries.
closed=$((port + 1))
tmux_start bash -c "\"$BIN\" watch --ssh \"ssh -p $closed -o BatchMode=yes -o ConnectTimeout=3\" 127.0.0.1:/nowhere; sleep 600"
wait_for 'screen | grep -q "connection lost: ssh: connect to host 127.0.0.1 port $closed"' 20 || fail "unreachable host not reported"
$T send-keys -t e2e q
$T kill-server
echo "e2e ssh: an unreachable host is reported on screen"

# A missing remote run: the remote circuitscope's error is shown, and it does not retry.
tmux_start bash -c "\"$BIN\" watch --ssh \"$SSH\" --remote-bin \"$BIN\" \"$user@127.0.0.1:$tmp/none\"; sleep 600"
wait_for 'screen | grep -q "\[failed\]" && screen | grep -q "failed: error: $tmp/none: no such run directory or event log"' 20 || fail "missing remote run not reported"
$T send-keys -t e2e q
echo "e2e ssh: a missing remote run is reported on screen"

# A host whose key is not in known_hosts: ssh never prompts over the dashboard (BatchMode); the
# screen says what to run instead.
: >"$tmp/empty_known"
NOKEY="ssh -p $port -i $tmp/client_key -o UserKnownHostsFile=$tmp/empty_known -o StrictHostKeyChecking=ask -o ConnectTimeout=5"
tmux_start bash -c "\"$BIN\" watch --ssh \"$NOKEY\" --remote-bin \"$BIN\" \"$user@127.0.0.1:$run\"; sleep 600"
wait_for 'screen | grep -q "host key of $user@127.0.0.1 is not known"' 20 || fail "an unknown host key is not reported"
screen | grep -qi "continue connecting" && fail "ssh prompted over the dashboard"
$T send-keys -t e2e q
$T kill-server
echo "e2e ssh: an unknown host key is reported with the command to accept it, and ssh never prompted"

# q ends the remote followers too (the run's and the analysis log's), within 2 s, on a run that
# is still going (no run_end: they would otherwise wait forever).
live="$tmp/live"
mkdir -p "$live"
cp "$run/run.json" "$live/"
head -20 "$run/events.jsonl" | grep -v '"run_end"' >"$live/events.jsonl"
tmux_start bash -c "\"$BIN\" watch --ssh \"$SSH\" --remote-bin \"$BIN\" \"$user@127.0.0.1:$live\"; sleep 600"
wait_for 'screen | grep -q "\[live\]"' 30 || fail "the live copy never went live"
wait_for "[ \$(pgrep -f 'events --follow.* $live' | wc -l) -ge 2 ]" 10 || fail "the two remote followers did not start: $(pgrep -af 'events --follow' || true)"
$T send-keys -t e2e q
wait_for "! pgrep -f 'events --follow.* $live' >/dev/null" 2 || fail "a remote follower outlived q by 2 s: $(pgrep -af "events --follow.* $live")"
$T kill-server
echo "e2e ssh: both remote followers ended within 2 s of q"
