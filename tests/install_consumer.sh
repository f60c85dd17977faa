#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds and runs a consumer
# through find_package(iou) (shared and static) and through pkg-config, and
# checks that the shared library exports only iou_* symbols.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib64" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
pc=$(ls -d "$work"/prefix/lib*/pkgconfig | head -1)
cc "$src/tests/consumer/main.c" -o "$work/pc" $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs iou)
LD_LIBRARY_PATH="$(dirname "$pc")" "$work/pc"
lib=$(ls "$(dirname "$pc")"/libiou.so.* | head -1)
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^iou_' | grep -v '^IOU_' || true)
if [ -n "$bad" ]; then
    echo "exported non-iou symbols:" $bad >&2
    exit 1
fi
echo "install, find_package, pkg-config and exports: ok"
