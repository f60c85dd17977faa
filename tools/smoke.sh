#!/bin/sh
# Smoke test of the tools (CTest: tools_echo_load). For each iou-echo mode:
# start it on a free port, run iou-load against it (every echoed byte is
# verified, pipelined, sizes that split across reads), hold idle connections,
# then check that SIGTERM ends the server cleanly (exit status 0).
# Usage: smoke.sh IOU-ECHO IOU-LOAD        exit 77: io_uring unavailable
set -eu
ECHO=$1
LOAD=$2
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "smoke: $*" >&2
    cat "$tmp"/* >&2 2>/dev/null || true
    exit 1
}

for mode in stream buf copy; do
    "$ECHO" --port 0 --mode "$mode" --duration 60 >"$tmp/server" 2>&1 &
    pid=$!
    port=""
    i=0
    while [ $i -lt 250 ] && [ -z "$port" ]; do
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\) .*/\1/p' "$tmp/server")
        if [ -z "$port" ] && ! kill -0 "$pid" 2>/dev/null; then
            if grep -qiE "not implemented|not permitted|not supported" "$tmp/server"; then
                echo "smoke: io_uring unavailable: $(cat "$tmp/server")"
                exit 77
            fi
            fail "iou-echo --mode $mode did not start"
        fi
        i=$((i + 1))
        sleep 0.02
    done
    [ -n "$port" ] || fail "iou-echo --mode $mode printed no port"

    for args in "-c 1 -m 64" "-c 20 -m 1000 -d 4" "-c 4 -m 100000 -d 8"; do
        # shellcheck disable=SC2086
        "$LOAD" -p "$port" $args -t 0.3 -w 0.1 --pid "$pid" --json >"$tmp/load" 2>&1 ||
            fail "iou-load $args against --mode $mode failed"
        grep -q '"round_trips":[1-9]' "$tmp/load" || fail "no round trips: $args, --mode $mode"
    done
    "$LOAD" -p "$port" -c 300 --idle -t 0.1 --pid "$pid" --json >"$tmp/load" 2>&1 ||
        fail "iou-load --idle against --mode $mode failed"
    grep -q '"mode":"idle"' "$tmp/load" || fail "no idle result, --mode $mode"

    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    pid=""
    [ "$status" -eq 0 ] || fail "iou-echo --mode $mode exited with status $status on SIGTERM"
    echo "smoke: iou-echo --mode $mode ok (port $port)"
done
