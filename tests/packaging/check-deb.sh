#!/usr/bin/env bash
# Builds the .deb of one build directory with CPack, unpacks it and checks what a board
# gets: the binary for the right architecture (it runs: --version, under EMULATOR when
# cross-built), the unit, the conffile, the docs, maintainer scripts that enable but do not
# start the service. Then runs lintian, if installed, and prints what it says.
#   check-deb.sh BUILD_DIR DEB_ARCH [EMULATOR...]
set -euo pipefail
build=$1 arch=$2
shift 2
emulator=("$@")
out=$build/package
rm -rf "$out" && mkdir -p "$out"
cpack --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 || { cat "$out/cpack.log"; exit 1; }
deb=$(ls "$out"/edgegw_*_"$arch".deb)
echo "package: $deb ($(stat -c %s "$deb") bytes)"

fail() { echo "FAIL: $*"; exit 1; }
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = edgegw ] || fail "Package: $(field Package)"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture), want $arch"
case "$(field Depends)" in *adduser*) ;; *) fail "Depends lacks adduser: $(field Depends)" ;; esac

root=$out/root
dpkg-deb -x "$deb" "$root"
ctl=$out/control
dpkg-deb -e "$deb" "$ctl"
for f in usr/bin/edgegw lib/systemd/system/edgegw.service etc/edgegw/edgegw.toml \
         usr/share/doc/edgegw/README.md usr/share/doc/edgegw/RASPBERRY-PI.md usr/share/doc/edgegw/CONFIG.md \
         usr/share/doc/edgegw/copyright usr/share/doc/edgegw/changelog.Debian.gz; do
  [ -e "$root/$f" ] || fail "missing /$f"
done
[ "$(stat -c %a "$root/usr/bin/edgegw")" = 755 ] || fail "edgegw is not mode 755"
version=$("${emulator[@]}" "$root/usr/bin/edgegw" --version) || fail "the packaged edgegw does not run"
echo "runs: $version"
grep -qx 'Type=notify' "$root/lib/systemd/system/edgegw.service" || fail "unit is not Type=notify"
grep -q '^MemoryMax=[0-9]' "$root/lib/systemd/system/edgegw.service" || fail "unit has no MemoryMax from the board"
grep -qx /etc/edgegw/edgegw.toml "$ctl/conffiles" || fail "the configuration is not a conffile"
for s in postinst prerm postrm; do [ -x "$ctl/$s" ] || fail "no executable $s"; done
grep -q 'deb-systemd-helper enable edgegw.service' "$ctl/postinst" || fail "postinst does not enable the unit"
if grep -v '^[[:space:]]*#' "$ctl/postinst" | grep -Eq 'deb-systemd-invoke (start|restart)|systemctl[^|]* start'; then
  fail "postinst starts the service before it is configured"
fi
# The shipped configuration is commented out, so the unit's ExecCondition skips the
# service until it is configured.
if "${emulator[@]}" "$root/usr/bin/edgegw" check-config --config "$root/etc/edgegw/edgegw.toml" >/dev/null 2>&1; then
  fail "the default configuration validates: the service would start unconfigured"
fi
echo "contents:"
dpkg-deb -c "$deb" | awk '{print "  " $1, $3, $6}'

if command -v lintian >/dev/null; then
  echo "lintian:"
  lintian --tag-display-limit 0 --allow-root "$deb" 2>&1 | sed 's/^/  /' || true
fi
echo "package check passed"
