#!/usr/bin/env bash
# Benchmark: what an idle runnel-agent costs a battery- and flash-powered device, this
# build against a baseline build of an earlier revision, both measured in the same run side
# by side. Each agent has one file source on a file nothing is written to and an uplink URL
# nothing listens on (backoff retries); after a warm-up both run idle for SECONDS. Prints per
# agent: wakeups/s (voluntary + involuntary context switches summed over
# /proc/PID/task/*/status, per second), bytes written to disk per hour (/proc/PID/io
# write_bytes) and bytes passed to write calls per hour (wchar), write syscalls per hour
# (syscw: every write, sendto and the like, sockets included) and RSS at the end.
# Usage: bench/agent_idle.sh [seconds]   (default 60)
#   RN_BIN       build directory of the agent to measure (default build-release; configured
#                and built, target runnel-agent only, if it has no agent yet)
#   RN_BASE_BIN  build directory of the baseline agent; default: RN_BASE_REV exported with
#                `git archive` and built (Release, runnel-agent only) in
#                $RN_BENCH_TMP/base-<rev>, which later runs reuse
#   RN_BASE_REV  baseline revision (default: the merge base of HEAD and main)
#   RN_BENCH_TMP where the agents' data_dirs go (default build-bench/ in the repository: a
#                real disk, since tmpfs counts no write_bytes)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
SECS=${1:-60}
WARM=3
BIN=${RN_BIN:-build-release}
TMPROOT=${RN_BENCH_TMP:-$PWD/build-bench}
mkdir -p "$TMPROOT"
W=$(mktemp -d "$TMPROOT/idle.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT

build_agent() { # build_agent SRC DIR [cmake args...]: a Release runnel-agent in DIR
	local src=$1 dir=$2
	shift 2
	cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$W/cmake-$(basename "$dir").log" 2>&1
	cmake --build "$dir" -j2 --target runnel-agent >>"$W/cmake-$(basename "$dir").log" 2>&1 ||
		{ tail -20 "$W/cmake-$(basename "$dir").log" >&2; exit 1; }
}

[ -x "$BIN/agent/runnel-agent" ] || build_agent . "$BIN"
if [ -n "${RN_BASE_BIN:-}" ]; then
	BASE=$RN_BASE_BIN
	BASE_REV=${RN_BASE_REV:-given}
else
	BASE_REV=${RN_BASE_REV:-$(git merge-base HEAD main)}
	rev=$(git rev-parse --short=12 "$BASE_REV")
	BASE="$TMPROOT/base-$rev" # kept: the next run reuses it
	if [ ! -x "$BASE/agent/runnel-agent" ]; then
		rm -rf "$BASE" && mkdir -p "$BASE/src"
		git archive "$BASE_REV" | tar -x -C "$BASE/src"
		build_agent "$BASE/src" "$BASE" -DRN_GIT_REV="$rev"
	fi
fi

start_agent() { # start_agent NAME BIN: starts it in the background; its pid in AGENT_PID
	local d="$W/$1"
	mkdir -p "$d/data"
	: >"$d/idle.log"
	cat >"$d/agent.conf" <<CONF
agent: { device_id = "bench-$1"; data_dir = "$d/data"; };
uplink: { url = "http://127.0.0.1:9"; };
sources = ( { type = "file"; name = "idle"; table = "bench.default.idle";
              paths = [ "$d/idle.log" ]; } );
CONF
	"$2/agent/runnel-agent" -c "$d/agent.conf" 2>"$d/agent.log" &
	AGENT_PID=$!
}

ctxt() { # ctxt PID: context switches of all its threads so far
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { n += $2 } END { print n + 0 }'
}
io() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/io"; } # io PID FIELD
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

start_agent base "$BASE"
base_pid=$AGENT_PID
start_agent current "$BIN"
cur_pid=$AGENT_PID
sleep "$WARM"
for p in $base_pid $cur_pid; do
	kill -0 "$p" 2>/dev/null || { echo "an agent died at start:"; tail "$W"/*/agent.log; exit 1; }
done
declare -A c0 wb0 wc0 sw0
for p in $base_pid $cur_pid; do
	c0[$p]=$(ctxt "$p")
	wb0[$p]=$(io "$p" write_bytes)
	wc0[$p]=$(io "$p" wchar)
	sw0[$p]=$(io "$p" syscw)
done
t0=$(now)
sleep "$SECS"
t=$(since "$t0")
printf 'idle agents, %s s each (after %s s warm-up), one idle file source, uplink unreachable\n' "$SECS" "$WARM"
printf '%-34s %16s %16s\n' "" "baseline" "current"
printf '%-34s %16s %16s\n' "revision" "$(git rev-parse --short=12 "$BASE_REV" 2>/dev/null || echo "$BASE_REV")" \
	"$(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo +)"
row() { # row LABEL EXPR-per-pid...
	printf '%-34s %16s %16s\n' "$1" "$2" "$3"
}
fig() { # fig PID WHAT
	local p=$1
	case $2 in
	wake) echo "scale=1; ($(ctxt "$p") - ${c0[$p]}) / $t" | bc -l ;;
	wb) echo "($(io "$p" write_bytes) - ${wb0[$p]}) * 3600 / $t" | bc -l | xargs printf '%.0f' ;;
	wc) echo "($(io "$p" wchar) - ${wc0[$p]}) * 3600 / $t" | bc -l | xargs printf '%.0f' ;;
	sw) echo "($(io "$p" syscw) - ${sw0[$p]}) * 3600 / $t" | bc -l | xargs printf '%.0f' ;;
	rss) rss_mb "$p" ;;
	esac
}
row "wakeups/s" "$(fig "$base_pid" wake)" "$(fig "$cur_pid" wake)"
row "disk bytes written/hour" "$(fig "$base_pid" wb)" "$(fig "$cur_pid" wb)"
row "bytes to write calls/hour" "$(fig "$base_pid" wc)" "$(fig "$cur_pid" wc)"
row "write syscalls/hour" "$(fig "$base_pid" sw)" "$(fig "$cur_pid" sw)"
row "RSS MB" "$(fig "$base_pid" rss)" "$(fig "$cur_pid" rss)"
