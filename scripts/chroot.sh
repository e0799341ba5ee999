#!/usr/bin/env bash
# Throw-away Debian 12 chroots for the packaging and cross-build tests.
#
#   scripts/chroot.sh create DIR [PKG,...]  debootstrap bookworm (minbase) into DIR, plus the
#                                           packages named; the bare base is cached in
#                                           $RN_CHROOT_CACHE (default build/chroot-cache) so a
#                                           second chroot costs no download
#   scripts/chroot.sh run DIR CMD...        run CMD inside DIR with /proc, /dev, /sys and
#                                           /etc/resolv.conf there, unmounted afterwards;
#                                           RN_CHROOT_BIND="HOST:GUEST[:ro] ..." bind-mounts
#                                           more host directories for the run
#   scripts/chroot.sh remove DIR            unmount whatever is left and delete DIR
#
# Root only. The mirror is the host's (deb.debian.org unless RN_MIRROR says otherwise).
set -euo pipefail

MIRROR=${RN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CACHE=${RN_CHROOT_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/build/chroot-cache}

die() { echo "chroot.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, mount, chroot)"

unmount_all() {
	local dir=$1 m
	# deepest first
	for m in $(awk -v d="$(realpath "$dir")" '$2 == d || index($2, d "/") == 1 { print $2 }' \
		/proc/mounts | sort -r); do
		umount -l "$m" || true
	done
}

create() {
	local dir=$1 extra=${2:-} tarball=$CACHE/$SUITE-minbase.tgz
	command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps)"
	mkdir -p "$CACHE"
	if [ ! -s "$tarball" ]; then
		local tmp
		tmp=$(mktemp -d "$CACHE/mk.XXXXXX")
		debootstrap --variant=minbase --make-tarball="$tarball.part" "$SUITE" "$tmp" "$MIRROR" \
			>"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; die "debootstrap --make-tarball failed"; }
		rm -rf "$tmp"
		mv "$tarball.part" "$tarball"
	fi
	[ -e "$dir" ] && remove "$dir"
	mkdir -p "$dir"
	debootstrap --variant=minbase --unpack-tarball="$tarball" "$SUITE" "$dir" "$MIRROR" \
		>"$dir.debootstrap.log" 2>&1 || { tail -20 "$dir.debootstrap.log"; die "debootstrap into $dir failed"; }
	printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" \
		>"$dir/etc/apt/sources.list"
	# no daemons started by maintainer scripts inside the chroot
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	if [ -n "$extra" ]; then
		run "$dir" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(echo "$extra" | tr ',' ' ')" \
			>"$dir.apt.log" 2>&1 || { tail -20 "$dir.apt.log"; die "apt-get install in $dir failed"; }
	fi
}

run() {
	local dir=$1 rc=0
	shift
	# killed half way (a ctest timeout), still leave nothing mounted
	trap 'unmount_all "$dir"' EXIT
	trap 'exit 143' TERM INT
	mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
	mountpoint -q "$dir/sys" || mount -t sysfs sys "$dir/sys"
	mountpoint -q "$dir/dev" || mount --bind /dev "$dir/dev"
	mountpoint -q "$dir/dev/pts" || mount -t devpts devpts "$dir/dev/pts" -o newinstance,ptmxmode=0666 || true
	local b host guest mode
	for b in ${RN_CHROOT_BIND:-}; do
		IFS=: read -r host guest mode <<<"$b"
		mkdir -p "$dir$guest"
		mountpoint -q "$dir$guest" || mount --bind "$host" "$dir$guest"
		[ "$mode" != ro ] || mount -o remount,bind,ro "$dir$guest"
	done
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 TERM=dumb chroot "$dir" "$@" || rc=$?
	unmount_all "$dir"
	trap - EXIT TERM INT
	return $rc
}

remove() {
	local dir=$1
	[ -d "$dir" ] || return 0
	unmount_all "$dir"
	if awk -v d="$(realpath "$dir")" 'index($2, d) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
		die "$dir still has mounts; not deleting"
	fi
	rm -rf "$dir" "$dir.debootstrap.log" "$dir.apt.log"
}

cmd=${1:-}
shift || true
case $cmd in
create) [ $# -ge 1 ] || die "usage: create DIR [PKG,...]"; create "$@" ;;
run) [ $# -ge 2 ] || die "usage: run DIR CMD..."; run "$@" ;;
remove) [ $# -eq 1 ] || die "usage: remove DIR"; remove "$1" ;;
*) die "usage: chroot.sh create|run|remove DIR ..." ;;
esac
