#!/usr/bin/env bash
# Resource errors: a full disk (a small tmpfs) and a read-only run directory (a tmpfs remounted
# read-only: these machines run as root, so chmod would not stop writes). Each command must
# exit 1 with one clear `error:` line, no panic, and leave the files that were there intact.
# Needs root for mount; under CI=true it must run, elsewhere it is skipped loudly without it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
tmp=$(mktemp -d)
mounts=()
cleanup() {
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

mount_tmpfs() { # mount_tmpfs DIR SIZE
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || return 1
    mounts+=("$1")
}
if ! mount_tmpfs "$tmp/probe" 64k; then
    [ "${CI:-}" = true ] && fail "cannot mount a tmpfs (CI=true: this test must run as root)"
    echo "!!! e2e resources: SKIPPED: mounting a tmpfs needs root" >&2
    exit 0
fi

# expect_error WHAT CMD...: exit status 1, exactly one `error:` line matching WHAT, no panic.
expect_error() {
    local what=$1; shift
    set +e
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    set -e
    [ $rc = 1 ] || fail "$* exited $rc (stderr: $(cat "$tmp/err"))"
    grep -q panicked "$tmp/err" && fail "$* panicked: $(cat "$tmp/err")"
    [ "$(grep -c '^error:' "$tmp/err")" = 1 ] || fail "$*: not one error line: $(cat "$tmp/err")"
    grep '^error:' "$tmp/err" | grep -q "$what" || fail "$*: error does not say '$what': $(cat "$tmp/err")"
    echo "  ok: $(grep '^error:' "$tmp/err" | cut -c1-150)"
}
fingerprint() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

echo "e2e resources: a full disk"
full="$tmp/full"
mount_tmpfs "$full" 96k || fail "mount"
echo "written before" >"$full/earlier.txt"
expect_error "No space left on device" "$BIN" train --preset products --out "$full/run" \
    --epochs 40 --n-train 2048 --checkpoint-every 10 --log-every 1
[ "$(cat "$full/earlier.txt")" = "written before" ] || fail "earlier file changed"
if [ -f "$full/run/events.jsonl" ]; then
    "$BIN" events "$full/run" >/dev/null 2>"$tmp/ev" || fail "the log of the failed run is unreadable: $(cat "$tmp/ev")"
fi
[ -f "$full/run/run.json" ] && { python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$full/run/run.json" || fail "run.json corrupt"; }
rm -rf "${full:?}/run"
expect_error "No space left on device" "$BIN" zoo --out "$full/zoo" --functions 4 --seeds 20 --epochs 2 --n-train 512
[ "$(cat "$full/earlier.txt")" = "written before" ] || fail "earlier file changed"

echo "e2e resources: a read-only run directory"
ro="$tmp/ro"
mount_tmpfs "$ro" 16m || fail "mount"
"$BIN" train --preset products --out "$ro/run" --epochs 2 --n-train 640 >/dev/null 2>&1 || fail "train"
"$BIN" zoo --out "$ro/zoo" --functions 2 --seeds 2 --epochs 2 --n-train 256 >/dev/null 2>&1 || fail "zoo"
mount -o remount,ro "$ro" || fail "remount read-only"
before=$(fingerprint "$ro")
expect_error "Read-only file system" "$BIN" probe "$ro/run"
expect_error "Read-only file system" "$BIN" graph "$ro/run"
expect_error "Read-only file system" "$BIN" eval "$ro/run"
expect_error "Read-only file system" "$BIN" train --preset products --out "$ro/new" --epochs 1
expect_error "Read-only file system" "$BIN" zoo --out "$ro/zoo2" --functions 2 --seeds 2
expect_error "Read-only file system" "$BIN" embed "$ro/zoo" --functions 2 --bottleneck 2 --mask 0.5 --steps 5 --held-out 1 --keep-flagged
[ "$(fingerprint "$ro")" = "$before" ] || fail "files in the read-only directory changed"
"$BIN" events "$ro/run" >/dev/null || fail "reading a read-only run failed"
echo "e2e resources: every write failure gave one clear error and left earlier files intact"
