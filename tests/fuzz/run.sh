#!/usr/bin/env bash
# Runs every libFuzzer target built by `make fuzz` for SECONDS each (default 30), starting
# from its seed corpus (copied, so the repository's corpus stays small): the one given to
# rn_add_fuzz_target, read from <binary>.corpus. A crash, or a target without seeds, makes the
# script fail; a crash leaves its input in build-fuzz/findings/<target>/.
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-30}
fail=0
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/fuzz_conf.supp
for bin in build-fuzz/tests/fuzz/fuzz_*; do
	case $bin in *_replay | *.corpus) continue ;; esac
	[ -x "$bin" ] || continue
	t=${bin##*/fuzz_}
	# the corpus the target was registered with (rn_add_fuzz_target writes <bin>.corpus)
	seeds=$(cat "$bin.corpus" 2>/dev/null)
	if [ -z "$seeds" ] || ! ls "$seeds"/* >/dev/null 2>&1; then
		echo "fuzz_$t: FAILED, no seed corpus (${seeds:-$bin.corpus missing})"
		fail=1
		continue
	fi
	work=build-fuzz/findings/$t
	mkdir -p "$work/corpus"
	cp -n "$seeds"/* "$work/corpus/"
	if (cd "$work" && "../../../$bin" -max_total_time="$secs" -rss_limit_mb=4096 corpus >log 2>&1); then
		echo "fuzz_$t: ok ($(grep -o 'DONE.*cov: [0-9]*' "$work/log" | sed 's/.*cov/cov/'))"
	else
		echo "fuzz_$t: FAILED, see $work/log"
		fail=1
	fi
done
exit $fail
