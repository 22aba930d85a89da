#!/usr/bin/env bash
# The vm.prepare test: the board image (built once, then cached; build-image.sh) and the
# arm64 .deb of this build, which the VM tests install on the board.
#   prepare.sh BUILD_DIR IMAGE_CACHE_DIR
set -euo pipefail
build=$1 cache=$2
bash "$(dirname "$0")/build-image.sh" "$cache"
out=$build/vm-deb
rm -rf "$out" && mkdir -p "$out"
cpack --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 || { cat "$out/cpack.log"; exit 1; }
ls -l "$out"/edgegw_*_arm64.deb
