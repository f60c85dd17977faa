#!/usr/bin/env bash
# Test of tools/iou-cp (CTest: tools_iou_cp). A tree with files of sizes
# around the chunk and alignment boundaries, modes (set-uid, read-only files
# and directories), symlinks (relative, absolute, dangling), names with spaces
# and nanosecond times is copied: plain (copy_file_range), by read and write
# with small chunks (several workers per file), --verify, --direct, and from
# another file system (where copy_file_range may be refused); each copy must equal the source in
# names, types, modes, sizes, contents, link targets and mtimes, and leave no
# temporary file. Then the failures: a file size limit (RLIMIT_FSIZE, so a
# write or fallocate gets EFBIG) must be reported naming the file, exit
# non-zero, leave no truncated destination and keep an existing destination
# as it was; a missing source likewise.
# Usage: test_iou_cp.sh IOU-CP WORKDIR
set -eu
CP=$(realpath "$1")
work=$(mktemp -d "$(realpath "${2:-/tmp}")/iou-cp-test.XXXXXX")
trap 'chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

fail() {
    echo "test_iou_cp: $*" >&2
    cat err 2>/dev/null >&2 || true
    exit 1
}

# Deterministic contents: byte i of a file of size n with seed s.
mkfile() { # path size seed
    python3 -c 'import random,sys; r=random.Random(int(sys.argv[3]));
open(sys.argv[1],"wb").write(r.randbytes(int(sys.argv[2])))' "$1" "$2" "$3"
}

mkdir -p src/a/b/c "src/with space" src/ro src/empty-dir
seed=1
for n in 0 1 4095 4096 4097 65535 65536 65537 1048575 1048576 1048577 3145851; do
    mkfile "src/a/f$n" "$n" $((seed++))
done
mkfile "src/with space/file one" 5000 $((seed++))
mkfile src/a/b/c/deep 200000 $((seed++))
mkfile src/ro/readonly 777 $((seed++))
for i in $(seq 40); do mkfile "src/a/b/many$i" $((i * 331)) $((seed++)); done
chmod 0600 src/a/f1
chmod 0755 src/a/f4095
chmod 4755 src/a/f4096
chmod 0444 src/ro/readonly
ln -s ../a/f1 src/ro/rel-link
ln -s /etc/hostname src/abs-link
ln -s does-not-exist src/dangling
touch -h -d '2001-02-03 04:05:06.123456789' src/a/f0 src/dangling
touch -d '1999-12-31 23:59:59.5' src/a/b src/a/f1048577
chmod 0555 src/ro
chmod 0750 src/a/b/c

# No skip: without io_uring, iou runs on its epoll backend.
"$CP" src dst0 2>err || fail "plain copy failed"

listing() { # dir -> names, types, modes, sizes, mtimes, link targets
    (cd "$1" && find . -printf '%p %y %m %s %T@ %l\n' | LC_ALL=C sort)
}
listing src >src.list

check_copy() { # dst label
    listing "$1" >"$1.list"
    diff src.list "$1.list" >diff.out || { cat diff.out >&2; fail "$2: metadata differs"; }
    diff -r --no-dereference src "$1" >diff.out || { cat diff.out >&2; fail "$2: contents differ"; }
    if find "$1" -name '.iou-cp.*' | grep -q .; then fail "$2: temporary files left"; fi
    echo "test_iou_cp: $2 ok"
}
check_copy dst0 "tree copy"

"$CP" -j 3 -d 4 --chunk 64K --no-copy-range src dst1 2>err || fail "copy with 64 KiB chunks failed"
check_copy dst1 "read and write, 64 KiB chunks, 3 jobs"

"$CP" --verify --chunk 64K src dst2 2>err || fail "--verify failed"
check_copy dst2 "--verify"

if dd if=/dev/zero of=direct-probe bs=4096 count=1 oflag=direct 2>/dev/null; then
    "$CP" --direct --verify src dst3 2>err || fail "--direct failed"
    check_copy dst3 "--direct --verify"
    "$CP" --direct --chunk 64K -d 8 src dst4 2>err || fail "--direct with 64 KiB chunks failed"
    check_copy dst4 "--direct, 64 KiB chunks"
else
    echo "test_iou_cp: this file system refuses O_DIRECT: --direct not tested"
fi

# From another file system (/dev/shm, if it is one): copy_file_range may be
# refused there (EXDEV), and the copy falls back on read and write.
shm=$(mktemp -d /dev/shm/iou-cp-test.XXXXXX 2>/dev/null) || shm=""
if [ -n "$shm" ] && [ "$(stat -c %d "$shm")" != "$(stat -c %d .)" ]; then
    trap 'chmod -R u+rwx "$work" "$shm" 2>/dev/null; rm -rf "$work" "$shm"' EXIT
    for n in 0 5000 65537 3145851; do mkfile "$shm/f$n" "$n" $((seed++)); done
    "$CP" "$shm" xfs 2>err || fail "copy from another file system failed"
    diff -r "$shm" xfs >diff.out || { cat diff.out >&2; fail "copy from another file system differs"; }
    echo "test_iou_cp: from another file system ok"
else
    [ -n "$shm" ] && rmdir "$shm"
    echo "test_iou_cp: /dev/shm is no other file system: cross-file-system copy not tested"
fi

# Into an existing directory: DST/NAME; a single file onto a new name.
mkdir into
"$CP" src/a/f65537 "src/with space" into 2>err || fail "copy into a directory failed"
cmp src/a/f65537 into/f65537 || fail "file copied into a directory differs"
cmp "src/with space/file one" "into/with space/file one" || fail "tree copied into a directory differs"
"$CP" src/a/f1048577 single 2>err || fail "single file copy failed"
cmp src/a/f1048577 single || fail "single file differs"
"$CP" src/a/f4097 single 2>err || fail "replacing an existing file failed"
cmp src/a/f4097 single || fail "the replaced file differs"
if find . -maxdepth 1 -name '.iou-cp.*' | grep -q .; then fail "temporary files left after a replacement"; fi

# ---- a full destination: RLIMIT_FSIZE of 64 KiB ----
mkdir full
printf 'old contents\n' >full/f65537
status=0
(
    trap '' XFSZ
    ulimit -f 64
    exec "$CP" src/a/f65537 src/a/f3145851 src/a/f4095 full
) 2>err || status=$?
[ "$status" -ne 0 ] || fail "copy past RLIMIT_FSIZE exited 0"
grep -q "full/f65537: .*File too large" err || fail "EFBIG not reported for full/f65537"
grep -q "full/f3145851: .*File too large" err || fail "EFBIG not reported for full/f3145851"
[ "$(cat full/f65537)" = "old contents" ] || fail "the existing destination was changed"
[ ! -e full/f3145851 ] || fail "a truncated destination was left: full/f3145851"
cmp src/a/f4095 full/f4095 || fail "the file within the limit was not copied"
if find full -name '.iou-cp.*' | grep -q .; then fail "temporary files left after EFBIG"; fi
echo "test_iou_cp: RLIMIT_FSIZE: reported, exit $status, nothing truncated left"

# ---- a missing source ----
status=0
"$CP" src/no-such-file missing 2>err || status=$?
[ "$status" -ne 0 ] || fail "a missing source exited 0"
grep -q "src/no-such-file: .*No such file or directory" err || fail "missing source not named"
[ ! -e missing ] || fail "a destination was created for a missing source"
echo "test_iou_cp: missing source: reported, exit $status"

# ---- usage errors ----
status=0
"$CP" only-one 2>err || status=$?
[ "$status" -eq 2 ] || fail "one argument: exit $status, expected 2"
"$CP" --help | grep -q "temporary name" || fail "--help does not say how a failed copy is handled"
echo "test_iou_cp: all ok"
