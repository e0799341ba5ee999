#!/usr/bin/env bash
# Benchmark: the file source's cost while what it tails is idle (bench/in_file_wake.c drives
# the plugin as the agent's loop does), for this tree's plugins/in_file and a baseline
# revision's, side by side, in three scenarios: a glob whose directories do not exist yet
# (and the latency once they and a file appear), an idle file beside another application's
# busy log, and a missing directory under a busy ancestor. Both are compiled with cc -O2 from
# source (the baseline's plugins/in_file from `git archive`, this tree's common/).
# Usage: bench/in_file_wake.sh [seconds per scenario (20)] [baseline revision (merge base
# with main)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
BASE=${2:-$(git merge-base HEAD main)}
W=$(mktemp -d /tmp/runnel-bench-wake.XXXXXX)
trap 'rm -rf "$W"' EXIT
COMMON="common/rn_conf.c common/rn_log.c common/rn_mem.c common/rn_buf.c common/rn_err.c
	common/rn_addr.c"
build() { # build OUT PLUGIN_DIR: its .c files (the baseline may have fewer)
	# shellcheck disable=SC2086
	cc -O2 -std=c11 -D_GNU_SOURCE -Iagent -Icommon -I"$2" -o "$1" bench/in_file_wake.c \
		"$2"/*.c $COMMON -lconfig
}
mkdir -p "$W/base"
git archive "$BASE" plugins/in_file | tar -x -C "$W/base"
build "$W/wake-base" "$W/base/plugins/in_file"
build "$W/wake-new" plugins/in_file
echo "baseline $(git rev-parse --short "$BASE"), $SECS s per scenario; the loop waits at most 1 s"
for s in missing neighbour ancestor; do
	for v in base new; do
		mkdir -p "$W/$v-$s"
		printf '%-5s ' "$v"
		"$W/wake-$v" "$W/$v-$s" "$s" "$SECS"
	done
done
