#!/usr/bin/env bash
# Benchmark: recovery time per fault kind. Runs the fault suite
# (tests/integration/faults.test.mjs) with a fixed seed, so two builds are struck by the same
# schedule, and prints, per fault kind, how many struck and the median and max recovery time
# (from the heal — process restarted, link healed, ballast deleted — until the first chunk
# the agent closes after it is acknowledged by the server).
# Usage: RN_BIN=build-release bench/fault_recovery.sh [seed] [faults]
#   FAULT_SOAK=<minutes> runs the schedule for that long instead of [faults] faults.
#   FAULT_KINDS=... as in the suite (e.g. +agent_buffer_enospc).
# Needs what the suite needs: node + npm packages (make deps-npm), mosquitto, socat,
# python3-paho-mqtt; root for the ENOSPC faults (tmpfs mounts).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${RN_BIN:-build-release}
SEED=${1:-${FAULT_SEED:-1}}
COUNT=${2:-${FAULT_COUNT:-52}}
W=$(mktemp -d /tmp/runnel-faultbench.XXXXXX)
trap 'rm -rf "$W"' EXIT

cd tests/integration
RN_BUILD_DIR=$(cd "$ROOT" && realpath "$BIN") RN_TEST_TMP="$W/tmp" FAULT_SEED=$SEED FAULT_COUNT=$COUNT \
	FAULT_REPORT="$W/report.json" node --test faults.test.mjs >"$W/test.out" 2>&1
rc=$?
if [ ! -f "$W/report.json" ]; then
	echo "the fault suite produced no report (exit $rc):" >&2
	tail -60 "$W/test.out" >&2
	exit 1
fi
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const s = (ms) => (ms === null ? "-" : (ms / 1000).toFixed(2));
console.log(`runnel bench: recovery per fault kind, FAULT_SEED=${r.seed}, ${r.faults.length} faults in ${r.elapsed_s.toFixed(0)} s`);
console.log("  kind                     count   median s    max s   not recovered in bound");
for (const [k, v] of Object.entries(r.kinds).sort())
  console.log(`  ${k.padEnd(24)} ${String(v.count).padStart(5)} ${s(v.median_ms).padStart(10)} ${s(v.max_ms).padStart(8)}   ${v.not_recovered}`);
const all = r.faults.map((f) => f.recovery_ms).filter((x) => x !== null).sort((a, b) => a - b);
console.log(`  all kinds                ${String(r.faults.length).padStart(5)} ${s(all[Math.floor((all.length - 1) / 2)] ?? null).padStart(10)} ${s(all.length ? all[all.length - 1] : null).padStart(8)}`);
console.log(`  peak RSS: agent ${r.rss_mb.agent.toFixed(0)} MB, server ${r.rss_mb.server.toFixed(0)} MB`);
if (r.problems.length) console.log(`  the suite FAILED with ${r.problems.length} problems; first: ${r.problems[0].split("\n")[0]}`);
' "$W/report.json"
exit $rc
