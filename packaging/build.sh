#!/usr/bin/env bash
# Builds the deb and rpm packages from this source tree into OUTDIR (make package: dist/).
#
#   packaging/build.sh OUTDIR [deb|rpm|all]
#
# The tree as it is (tracked and untracked files git does not ignore, uncommitted edits
# included) is staged as runnel-VERSION/ in OUTDIR/.stage; the debs come from
# `dpkg-buildpackage -b -us -uc` there (debian/), the rpms from `rpmbuild -bb --nodeps` on a
# tarball of it (packaging/rpm/runnel.spec). Build dependencies are taken as given (make deps
# installs them). Extra arguments for dpkg-buildpackage (e.g. -a arm64, -Ppkg.runnel.agent-only)
# come from RN_DPKG_OPTS. Prints how long each step took.
set -euo pipefail

out=${1:?usage: build.sh OUTDIR [deb|rpm|all]}
what=${2:-all}
src=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^project(runnel VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || { echo "build.sh: no version in CMakeLists.txt" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/.stage
RN_GIT_REV=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo "$version")
if [ -n "$(git -C "$src" status --porcelain 2>/dev/null)" ]; then
	RN_GIT_REV=$RN_GIT_REV-dirty
fi
export RN_GIT_REV

step() { # step NAME CMD...: runs CMD, logs to OUTDIR/NAME.log, prints the time taken
	local name=$1 t0=$SECONDS
	shift
	if ! "$@" >"$out/$name.log" 2>&1; then
		tail -40 "$out/$name.log" >&2
		echo "build.sh: $name failed (log: $out/$name.log)" >&2
		exit 1
	fi
	echo "build.sh: $name: $((SECONDS - t0)) s"
}

stage_tree() {
	rm -rf "$stage"
	mkdir -p "$stage/runnel-$version"
	(cd "$src" && git ls-files -co --exclude-standard -z |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -xf - -C "$stage/runnel-$version"
}

build_deb() {
	(cd "$stage/runnel-$version" && dpkg-buildpackage -b -us -uc ${RN_DPKG_OPTS:-})
	rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo
	mv "$stage"/*.deb "$stage"/*.changes "$stage"/*.buildinfo "$out"/
}

build_rpm() {
	local top=$stage/rpmbuild
	rm -rf "$top"
	mkdir -p "$top/SOURCES"
	tar -czf "$top/SOURCES/runnel-$version.tar.gz" -C "$stage" "runnel-$version"
	rpmbuild -bb --nodeps --define "_topdir $top" --define "rn_git_rev $RN_GIT_REV" \
		--define "packager ${RN_PACKAGER:-$(sed -n "s/^Maintainer: //p" "$src/debian/control")}" \
		${RN_RPM_OPTS:-} "$src/packaging/rpm/runnel.spec"
	rm -f "$out"/*.rpm
	find "$top/RPMS" -name '*.rpm' -exec mv {} "$out"/ \;
}

step stage stage_tree
case $what in
deb) step deb build_deb ;;
rpm) step rpm build_rpm ;;
all) step deb build_deb; step rpm build_rpm ;;
*) echo "build.sh: deb, rpm or all" >&2; exit 2 ;;
esac
rm -rf "$stage"
ls -l "$out"/*.deb "$out"/*.rpm 2>/dev/null || true
