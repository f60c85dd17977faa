#!/usr/bin/env bash
# iou-cp under fault injection (CTest: tools_iou_cp_fault, label "fault").
# With IOU_FAULT set, reads and writes fail with EINTR / EAGAIN / ENOMEM / EIO
# or come back short. Each run must end in one of two ways, never a third:
#   - exit 0 and a destination equal to the source, byte for byte;
#   - exit 1 with an "iou-cp: PATH: ..." line naming the file (source for a
#     failed read, destination for a failed write), and every file
#     that does exist at the destination complete and equal (no truncated
#     file, no temporary left behind).
# Several seeds, so both outcomes are reached (checked at the end).
# Usage: test_iou_cp_fault.sh IOU-CP WORKDIR
set -euo pipefail
CP=$1
work=$(mktemp -d "$(realpath "${2:-/tmp}")/iou-cp-fault.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() {
    echo "test_iou_cp_fault: $*" >&2
    exit 1
}

mkdir -p src/a src/b
seed=1
for n in 0 1 4096 65537 300000 1048577 2500000; do
    head -c "$n" /dev/urandom >"src/a/f$n"
done
for i in $(seq 30); do head -c $((i * 997)) /dev/urandom >"src/b/s$i"; done
total=$(find src -type f | wc -l)

ok_runs=0 failed_runs=0 files_checked=0
for seed in $(seq 1 12); do
    dst=dst$seed
    # Odd seeds copy through reads and writes (each an operation the injector
    # can fail); even seeds through copy_file_range on the pool, whose
    # surrounding opens, statx and links still can fail.
    mode=()
    [ $((seed % 2)) -eq 1 ] && mode=(--no-copy-range)
    if IOU_FAULT=0.02:$seed "$CP" "${mode[@]}" src "$dst" 2>err; then
        diff -r src "$dst" >/dev/null || fail "seed $seed: exit 0 but the copy differs"
        ok_runs=$((ok_runs + 1))
    else
        rc=$?
        [ "$rc" -eq 1 ] || fail "seed $seed: exit status $rc (want 0 or 1)"
        grep -qE "^iou-cp: (src|$dst)/[^:]+: " err || { cat err >&2; fail "seed $seed: failure not reported by file name"; }
        failed_runs=$((failed_runs + 1))
    fi
    # Whatever exists at the destination is complete and equal.
    while IFS= read -r f; do
        rel=${f#"$dst"/}
        [ -f "src/$rel" ] || fail "seed $seed: stray file $f"
        cmp -s "src/$rel" "$f" || fail "seed $seed: $f differs from its source (truncated?)"
        files_checked=$((files_checked + 1))
    done < <(find "$dst" -type f 2>/dev/null)
    if find "$dst" -name '.iou-cp.*' 2>/dev/null | grep -q .; then
        fail "seed $seed: temporary files left"
    fi
done
echo "test_iou_cp_fault: 12 runs of $total files: $ok_runs complete, $failed_runs reported failures; $files_checked destination files verified"
[ "$failed_runs" -gt 0 ] || fail "no run met an injected failure: the injection did not reach iou-cp"
