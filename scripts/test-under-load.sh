#!/usr/bin/env bash
# Runs the whole suite (`make test`) RUNS times in a row on a fresh clone of this repository's
# HEAD while stress-ng keeps every core busy, and stops at the first failure. This is how the
# suite is checked for tests that depend on a lucky ordering: every assertion on timing must
# wait for a state, so a loaded machine may only make the run slower, never make it fail.
#
#   scripts/test-under-load.sh [RUNS]        (default 5; needs root or sudo for apt-get)
#
# The clone goes to $TMPDIR; its build directory is kept after a failure for inspection.
set -euo pipefail
runs=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
command -v stress-ng >/dev/null ||
	{ $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq stress-ng >/dev/null; }

work=$(mktemp -d "${TMPDIR:-/tmp}/runnel-load.XXXXXX")
git clone -q "$repo" "$work/src"
# node_modules are not in git: reuse the checkout's when present (npm would fetch the same)
[ -d "$repo/tests/integration/node_modules" ] &&
	cp -a "$repo/tests/integration/node_modules" "$work/src/tests/integration/"

stress-ng --cpu "$(nproc)" --timeout 0 --quiet &
stress=$!
trap 'kill $stress 2>/dev/null; wait $stress 2>/dev/null || true' EXIT

for i in $(seq 1 "$runs"); do
	start=$(date +%s)
	if make -C "$work/src" test >"$work/run$i.log" 2>&1; then
		echo "run $i/$runs: passed in $(($(date +%s) - start)) s"
		rm -rf "$work/src/build/test-tmp"
	else
		echo "run $i/$runs: FAILED after $(($(date +%s) - start)) s; log: $work/run$i.log"
		grep -E '^\s*[0-9]+/[0-9]+ Test.*(Failed|Timeout)' "$work/run$i.log" || true
		exit 1
	fi
done
echo "all $runs runs passed under stress-ng --cpu $(nproc); clone in $work"
