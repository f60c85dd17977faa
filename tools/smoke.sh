#!/usr/bin/env bash
# Smoke test of the tools (CTest: tools_echo_load). For each iou-echo mode
# (and the stream mode on two loops, --threads 2):
# start it on a free port, run iou-load against it (every echoed byte is
# verified, pipelined, sizes that split across reads), hold idle connections,
# then check that SIGTERM ends the server cleanly (exit status 0).
# Usage: smoke.sh IOU-ECHO IOU-LOAD        exit 77: io_uring unavailable
# The server's first line (its "listening on HOST:PORT" or the error it exits
# with) is read from a FIFO: the script waits on that event, not on a delay.
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

for cfg in stream buf copy "stream --threads 2"; do
    mode=${cfg%% *}
    extra=${cfg#"$mode"}
    rm -f "$tmp/fifo"
    mkfifo "$tmp/fifo"
    # shellcheck disable=SC2086
    "$ECHO" --port 0 --mode "$mode" $extra --duration 60 >"$tmp/fifo" 2>&1 &
    pid=$!
    exec 3<"$tmp/fifo"
    first=""
    IFS= read -r -t 10 first <&3 || true
    echo "$first" >"$tmp/server"
    cat <&3 >>"$tmp/server" & # the rest, so the server never blocks on its output
    exec 3<&-
    port=$(printf '%s\n' "$first" | sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\) .*/\1/p')
    if [ -z "$port" ] && printf '%s\n' "$first" | grep -qiE "not implemented|not permitted|not supported"; then
        echo "smoke: io_uring unavailable: $first"
        exit 77
    fi
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
