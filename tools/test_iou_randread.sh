#!/usr/bin/env bash
# Test of tools/iou-randread (CTest: tools_iou_randread): on an 8 MiB file,
# each mode (buffered with and without the fast path, registered buffers and
# file, O_DIRECT with and without them; queue depth 1 and 16) performs
# exactly the requested number of reads (--ios, no warm-up: bounded by a
# count, not by time) and reports sane figures: IOPS > 0, 0 < p50 <= p99 <=
# p99.9. Then the errors: a missing file, a file smaller than one block.
# Usage: test_iou_randread.sh IOU-RANDREAD WORKDIR
set -eu
RR=$(realpath "$1")
work=$(mktemp -d "$(realpath "${2:-/tmp}")/iou-randread-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() {
    echo "test_iou_randread: $*" >&2
    cat out err 2>/dev/null >&2 || true
    exit 1
}

head -c $((8 << 20)) /dev/urandom >data
direct=1
dd if=data of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null || direct=0

check() { # args...: one run of 3000 reads, checked
    if ! "$RR" -n 3000 -w 0 --json "$@" data >out 2>err; then
        # Registered buffers and files need io_uring: on epoll, a clear refusal.
        if [[ " $* " == *" --fixed "* && "${IOU_BACKEND:-}" == epoll ]] &&
            grep -qi "not supported" err; then
            echo "test_iou_randread: --fixed $*: refused on epoll: $(head -n1 err)"
            return 0
        fi
        fail "iou-randread $* failed"
    fi
    python3 - "$*" out <<'PY' || fail "iou-randread $*: implausible figures"
import json, sys
d = json.load(open(sys.argv[2]))
ok = (d["ios"] == 3000 and d["iops"] > 0 and d["window_s"] > 0
      and 0 < d["p50_us"] <= d["p99_us"] <= d["p999_us"] and d["cpu_us_per_io"] >= 0)
print("test_iou_randread: %-28s %9.0f IOPS  p50 %.1f us  p99 %.1f us" % (sys.argv[1], d["iops"], d["p50_us"], d["p99_us"]))
sys.exit(0 if ok else 1)
PY
}

for qd in 1 16; do
    check -q $qd
    check -q $qd --no-fastpath
    check -q $qd --fixed
    if [ $direct = 1 ]; then
        check -q $qd --direct
        check -q $qd --direct --fixed
    fi
done
[ $direct = 1 ] || echo "test_iou_randread: this file system refuses O_DIRECT: --direct not tested"

# Text output names the figures.
"$RR" -n 100 -w 0 -b 8K data >out 2>err || fail "text output run failed"
grep -q "IOPS" out && grep -q "p99.9" out || fail "text output lacks IOPS or p99.9"

status=0
"$RR" -n 10 no-such-file >out 2>err || status=$?
[ $status -ne 0 ] && grep -q "no-such-file: No such file" err || fail "missing file: exit $status"
head -c 100 /dev/urandom >tiny
status=0
"$RR" -n 10 tiny >out 2>err || status=$?
[ $status -ne 0 ] && grep -q "smaller than one" err || fail "tiny file: exit $status"
echo "test_iou_randread: all ok"
