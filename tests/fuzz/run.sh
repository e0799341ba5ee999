#!/usr/bin/env bash
# Runs every libFuzzer target built by `make fuzz` for SECONDS each (default 30), starting
# from its seed corpus (copied, so the repository's corpus stays small). A crash leaves its
# input in build-fuzz/findings/<target>/ and makes the script fail.
set -u
cd "$(dirname "$0")/../.."
secs=${1:-30}
fail=0
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/fuzz_conf.supp
for bin in build-fuzz/tests/fuzz/fuzz_*; do
	case $bin in *_replay) continue ;; esac
	[ -x "$bin" ] || continue
	t=${bin##*/fuzz_}
	seeds=tests/fuzz/corpus/$t
	[ $t = uplink_response ] && seeds=tests/fuzz/corpus/uplink
	[ $t = grpc_deframe ] && seeds=tests/fuzz/corpus/grpc
	work=build-fuzz/findings/$t
	mkdir -p "$work/corpus"
	cp -n "$seeds"/* "$work/corpus/" 2>/dev/null
	if (cd "$work" && "../../../$bin" -max_total_time="$secs" -rss_limit_mb=4096 corpus >log 2>&1); then
		echo "fuzz_$t: ok ($(grep -o 'DONE.*cov: [0-9]*' "$work/log" | sed 's/.*cov/cov/'))"
	else
		echo "fuzz_$t: FAILED, see $work/log"
		fail=1
	fi
done
exit $fail
