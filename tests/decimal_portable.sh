#!/usr/bin/env bash
# The decimal suite through the portable 128-bit path (common/rn_i128.h without __int128), as
# 32-bit targets build it: configures BIN with -DRN_NO_INT128=ON, builds the decimal unit
# tests, fuzz replays and both programs, runs them, then (with node and the npm packages) the
# end-to-end decimal tests against that build: Parquet decimals read back by DuckDB and
# arrow-rs, typed JSON and PROTO tables through the real server.
#
#   tests/decimal_portable.sh SRC BIN [cmake options...]   (ctest decimal_portable)
set -euo pipefail
SRC=$1 BIN=$2
shift 2
JOBS=${JOBS:-$(nproc)}
UNITS="test_i128 test_schema test_protorow test_parquet test_mat test_delta_log fuzz_jsonrow_replay
	fuzz_protorow_replay"

cmake -S "$SRC" -B "$BIN" -DRN_NO_INT128=ON "$@" >"$BIN.configure.log" 2>&1 ||
	{ tail -20 "$BIN.configure.log"; exit 1; }
cmake --build "$BIN" -j"$JOBS" --target $UNITS pq_write_types runnel-server runnel-agent \
	>"$BIN.build.log" 2>&1 || { grep -E -A5 'error' "$BIN.build.log" | head -40; exit 1; }
# the build really takes the portable path
out=$("$BIN/tests/unit/common/test_i128" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -q '^rn_i128: portable representation$' ||
	{ echo "decimal_portable: test_i128 in $BIN does not use the portable path"; exit 1; }
cd "$BIN"
ctest --output-on-failure -R "^($(echo $UNITS | tr ' ' '|'))\$"
if command -v node >/dev/null && [ -d "$SRC/tests/integration/node_modules/@duckdb/node-api" ]; then
	cd "$SRC/tests/integration"
	RN_BUILD_DIR=$BIN RN_TEST_TMP=$BIN/test-tmp node --test parquet_types.test.mjs \
		e2e_typed.test.mjs e2e_proto.test.mjs
else
	echo "decimal_portable: SKIPPED the end-to-end part: node or tests/integration/node_modules" \
		"missing (make deps-npm)"
fi
