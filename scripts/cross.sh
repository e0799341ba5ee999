#!/usr/bin/env bash
# Cross-builds for arm64 and armhf in a Debian 12 chroot (make cross ARCH=..., ctest cross_arm64).
#
#   scripts/cross.sh ARCH [OUT]          prepare the chroot, build, run the unit tests and fuzz
#                                        replays under qemu-user, build the packages (with
#                                        debian/) into OUT/debs-ARCH
#   scripts/cross.sh prepare ARCH [OUT]  only prepare the chroot
#
# ARCH is arm64 (agent and server) or armhf (agent only: -DRN_BUILD_SERVER=OFF). OUT (default
# build-cross) holds the chroot; the cross libraries are installed there, never on the host
# (multiarch installs would upgrade host packages). The prepared chroot is kept with a stamp
# naming its packages, so a second run in the same OUT installs nothing and rebuilds only
# what changed: the sources are copied to /src in the chroot with their times, the build dir
# is /build/ARCH inside it. Tests that cannot run under qemu-user are listed below and skipped
# by name with the reason printed. Each step prints its time. Root only (chroot.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHROOT_SH=$ROOT/scripts/chroot.sh
JOBS=${JOBS:-$(nproc)}

die() { echo "cross.sh: $*" >&2; exit 1; }
# 77: ctest's SKIP_RETURN_CODE for cross_arm64, with the reason printed
[ "$(id -u)" = 0 ] || { echo "cross.sh: SKIPPED: needs root (debootstrap, mount, chroot)"; exit 77; }
command -v debootstrap >/dev/null ||
	{ echo "cross.sh: SKIPPED: debootstrap is not installed (make deps)"; exit 77; }

only_prepare=0
if [ "${1:-}" = prepare ]; then
	only_prepare=1
	shift
fi
ARCH=${1:-}
OUT=$(realpath -m "${2:-$ROOT/build-cross}")
case $ARCH in
arm64) TRIPLET=aarch64-linux-gnu SERVER=ON QEMU=qemu-aarch64 ;;
armhf) TRIPLET=arm-linux-gnueabihf SERVER=OFF QEMU=qemu-arm ;;
*) die "usage: cross.sh [prepare] arm64|armhf [OUT]" ;;
esac
CH=$OUT/chroot

# Host (amd64) tools in the chroot: the generators run on the build machine; the well-known
# .proto files come from libprotobuf-dev (architecture-independent content).
BASE_PKGS="cmake make pkg-config protobuf-c-compiler libprotobuf-dev python3 qemu-user file
	dpkg-dev"
# Target libraries: what the agent, buffer, uplink, plugins and tests link; the server's
# own libraries only where the server is built (libevent-dev is not Multi-Arch: same: its
# arm64 and armhf packages exclude each other, so armhf, agent only, must not need it).
ARCH_PKGS="crossbuild-essential-$ARCH libc6:$ARCH libprotobuf-c-dev:$ARCH libzstd-dev:$ARCH
	libsqlite3-dev:$ARCH libcurl4-openssl-dev:$ARCH libconfig-dev:$ARCH libmosquitto-dev:$ARCH
	libcmocka-dev:$ARCH"
[ $SERVER = OFF ] || ARCH_PKGS="$ARCH_PKGS libnghttp2-dev:$ARCH libevent-dev:$ARCH uuid-dev:$ARCH
	libssl-dev:$ARCH"

# Tests that cannot run under qemu-user, by name, with the reason printed when skipped.
declare -A SKIP=(
	[check_refs]="not an $ARCH program: it checks the sources, and the native build runs it"
	[check_refs_selftest]="not an $ARCH program: the native build runs it"
	[monitoring_rules]="not an $ARCH program: promtool checks packaging/monitoring/, the native build runs it"
	[monitoring_rules_selftest]="not an $ARCH program: the native build runs it"
	[test_in_serial]="qemu-user lacks the termios2 ioctls (TCGETS2/TCSETS2) that test_read_unplug_reopen's 250000 baud needs (ENOSYS)"
)

T0=$(date +%s)
step_start=$T0
step() {
	local now
	now=$(date +%s)
	[ -z "${step_name:-}" ] || printf 'cross.sh: %-40s %4ds\n' "$step_name" $((now - step_start))
	step_name=$1
	step_start=$now
}

in_chroot() { "$CHROOT_SH" run "$CH" "$@"; }

prepare() {
	local want_base want_arch
	want_base=$(echo "suite bookworm; $BASE_PKGS" | tr -s ' \t\n' ' ')
	want_arch=$(echo "$ARCH_PKGS" | tr -s ' \t\n' ' ')
	mkdir -p "$OUT"
	if [ ! -x "$CH/usr/bin/cmake" ] || [ "$(cat "$OUT/chroot.stamp" 2>/dev/null)" != "$want_base" ]; then
		step "chroot: debootstrap + host tools"
		rm -f "$OUT"/chroot*.stamp
		"$CHROOT_SH" create "$CH" "$(echo $BASE_PKGS | tr ' ' ',')"
		echo "$want_base" >"$OUT/chroot.stamp"
	fi
	if [ "$(cat "$OUT/chroot.$ARCH.stamp" 2>/dev/null)" != "$want_arch" ]; then
		step "chroot: $ARCH libraries"
		# the arm ports are on the same mirror
		in_chroot sh -c "dpkg --add-architecture $ARCH && apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$want_arch" >"$OUT/chroot.$ARCH.apt.log" 2>&1 ||
			{ tail -20 "$OUT/chroot.$ARCH.apt.log"; die "installing the $ARCH libraries failed"; }
		echo "$want_arch" >"$OUT/chroot.$ARCH.stamp"
	fi
}

# The sources as they are in the work tree (committed or not), with their modification times,
# so that an unchanged file is not rebuilt.
copy_source() {
	local dst=$CH/src
	mkdir -p "$dst"
	find "$dst" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
	tar -C "$ROOT" --exclude='./build*' --exclude=node_modules --exclude=./.git \
		--exclude=./demo-run -cf - . | tar -C "$dst" -xf -
}

build_and_test() {
	local skip_re="" name
	step "$ARCH: configure"
	in_chroot cmake -S /src -B "/build/$ARCH" -DCMAKE_TOOLCHAIN_FILE="/src/cmake/toolchain-$TRIPLET.cmake" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRN_WERROR=ON -DRN_BUILD_SERVER=$SERVER \
		-DRN_GIT_REV="$REV" >"$OUT/$ARCH.configure.log" 2>&1 ||
		{ tail -30 "$OUT/$ARCH.configure.log"; die "configure for $ARCH failed"; }
	step "$ARCH: build (-j$JOBS)"
	in_chroot cmake --build "/build/$ARCH" -j"$JOBS" >"$OUT/$ARCH.build.log" 2>&1 ||
		{ grep -m20 -B2 -A5 'error' "$OUT/$ARCH.build.log" || tail -30 "$OUT/$ARCH.build.log"; die "build for $ARCH failed"; }
	in_chroot file "/build/$ARCH/agent/runnel-agent" | sed 's/^/cross.sh: /'
	step "$ARCH: unit tests and fuzz replays under $QEMU"
	for name in "${!SKIP[@]}"; do
		echo "cross.sh: skipped $name: ${SKIP[$name]}"
		skip_re="$skip_re${skip_re:+|}^$name\$"
	done
	in_chroot sh -c "cd /build/$ARCH && ctest -L 'unit|fuzz' ${skip_re:+-E '$skip_re'} -j$JOBS \
		--timeout 600 --output-on-failure" 2>&1 | tee "$OUT/$ARCH.ctest.log" |
		grep -Ev '^ *([0-9]+/[0-9]+ Test|Start +[0-9]+:)' || true
	grep -q '^100% tests passed' "$OUT/$ARCH.ctest.log" || die "unit tests under $QEMU failed"
}

# The Debian packages (debian/), cross-built by dpkg-buildpackage as a packager would: build
# dependencies from debian/control for the host architecture ARCH, armhf with the agent-only
# profile. Each arch-specific .deb must say ARCH; they are copied to OUT/debs-ARCH.
packages() {
	local src=$CH/pkg/$ARCH/runnel prof="" want deb a n=0
	[ $SERVER = ON ] || prof="-Ppkg.runnel.agent-only"
	want="$(md5sum <"$ROOT/debian/control") $prof"
	if [ "$(cat "$OUT/chroot.$ARCH.builddeps.stamp" 2>/dev/null)" != "$want" ]; then
		step "$ARCH: build dependencies of debian/control"
		mkdir -p "$CH/pkg/bd/debian"
		cp "$ROOT/debian/control" "$CH/pkg/bd/debian/control"
		in_chroot sh -c "DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq \
			--no-install-recommends -a $ARCH $prof /pkg/bd" \
			>"$OUT/chroot.$ARCH.builddeps.log" 2>&1 ||
			{ tail -20 "$OUT/chroot.$ARCH.builddeps.log"; die "build dependencies for $ARCH"; }
		echo "$want" >"$OUT/chroot.$ARCH.builddeps.stamp"
	fi
	step "$ARCH: dpkg-buildpackage -a $ARCH $prof"
	rm -rf "$CH/pkg/$ARCH"
	mkdir -p "$src"
	tar -C "$ROOT" --exclude='./build*' --exclude=node_modules --exclude=./.git \
		--exclude=./demo-run --exclude=./dist -cf - . | tar -C "$src" -xf -
	in_chroot sh -c "cd /pkg/$ARCH/runnel && RN_GIT_REV=$REV DEB_BUILD_OPTIONS='nocheck parallel=$JOBS' \
		dpkg-buildpackage -a $ARCH -b -us -uc $prof" >"$OUT/$ARCH.dpkg-buildpackage.log" 2>&1 ||
		{ tail -30 "$OUT/$ARCH.dpkg-buildpackage.log"; die "dpkg-buildpackage for $ARCH failed"; }
	rm -rf "$OUT/debs-$ARCH"
	mkdir -p "$OUT/debs-$ARCH"
	for deb in "$CH/pkg/$ARCH"/*.deb; do
		[ -e "$deb" ] || die "dpkg-buildpackage for $ARCH made no .deb"
		a=$(dpkg-deb -f "$deb" Architecture)
		echo "cross.sh: $(basename "$deb"): Architecture $a, $(stat -c %s "$deb") bytes"
		case $a in
		"$ARCH") n=$((n + 1)) ;;
		all) ;;
		*) die "$(basename "$deb") says Architecture $a, not $ARCH" ;;
		esac
		cp "$deb" "$OUT/debs-$ARCH/"
	done
	[ $n -gt 0 ] || die "no $ARCH package among the .debs"
}

REV=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
step "prepare"
prepare
if [ $only_prepare = 0 ]; then
	step "copy the sources"
	copy_source
	build_and_test
	if [ -f "$ROOT/debian/control" ]; then
		packages
	else
		step ""
		echo "cross.sh: no debian/ in this tree: no packages built"
	fi
fi
step ""
echo "cross.sh: $ARCH done in $(($(date +%s) - T0))s"
