#!/usr/bin/env bash
# A fuzzing campaign: runs libFuzzer targets built by `make fuzz` (build-fuzz/) for a number
# of executions each (default 10,000,000), starting from the repository's corpus, and keeps
# what they found. Usage:
#
#   tests/fuzz/campaign.sh [-n RUNS] [-j JOBS] [TARGET...]    (TARGET: rest, not fuzz_rest)
#
# For each target: the corpus registered with it (<binary>.corpus) is copied to
# build-fuzz/campaign/<target>/, the fuzzer runs until RUNS inputs were executed (-runs), then
# the inputs that add coverage to the repository's corpus are merged into it (-merge=1), so
# `make test` replays them from then on. One line per target goes to stdout and to
# build-fuzz/campaign/results.tsv: target, executions, seconds, executions/s, inputs added,
# result. A crash, leak, timeout or OOM fails the target; its input stays in the work
# directory (crash-*, leak-*, timeout-*, oom-*) and nothing is merged.
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 1
runs=10000000
jobs=1
while getopts n:j: o; do
	case $o in
	n) runs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/fuzz_conf.supp
out=build-fuzz/campaign
mkdir -p "$out"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for bin in build-fuzz/tests/fuzz/fuzz_*; do
		case $bin in *_replay | *.corpus) continue ;; esac
		[ -x "$bin" ] && targets+=("${bin##*/fuzz_}")
	done
fi

one() {
	local t=$1 bin=build-fuzz/tests/fuzz/fuzz_$1 seeds work log start secs execs before after res
	seeds=$(cat "$bin.corpus" 2>/dev/null)
	if [ ! -x "$bin" ] || [ -z "$seeds" ] || [ ! -d "$seeds" ]; then
		printf '%s\t0\t0\t0\t0\tFAILED: no binary or seed corpus\n' "$t"
		return 1
	fi
	work=$out/$t
	rm -rf "$work"
	mkdir -p "$work/corpus"
	cp "$seeds"/* "$work/corpus/"
	log=$work/log
	start=$(date +%s)
	(cd "$work" && "../../../$bin" -runs="$runs" -rss_limit_mb=4096 -timeout=20 \
		-print_final_stats=1 corpus >log 2>&1)
	res=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	execs=${execs:-0}
	if [ $res -ne 0 ]; then
		printf '%s\t%s\t%s\t%s\t0\tFAILED (exit %d), see %s\n' "$t" "$execs" "$secs" \
			$((execs / (secs ? secs : 1))) "$res" "$log"
		return 1
	fi
	before=$(find "$seeds" -type f | wc -l)
	"$bin" -merge=1 "$seeds" "$work/corpus" >"$work/merge.log" 2>&1 || {
		printf '%s\t%s\t%s\t%s\t0\tFAILED: merge, see %s/merge.log\n' "$t" "$execs" \
			"$secs" $((execs / (secs ? secs : 1))) "$work"
		return 1
	}
	after=$(find "$seeds" -type f | wc -l)
	printf '%s\t%s\t%s\t%s\t%s\tok\n' "$t" "$execs" "$secs" $((execs / (secs ? secs : 1))) \
		$((after - before))
}

fail=0
printf 'target\texecutions\tseconds\texec/s\tadded\tresult\n'
if [ "$jobs" -le 1 ]; then
	for t in "${targets[@]}"; do
		one "$t" | tee -a "$out/results.tsv" || fail=1
	done
else
	export -f one
	export runs out
	printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'one {}' >"$out/this.tsv"
	tee -a "$out/results.tsv" <"$out/this.tsv"
	grep -q FAILED "$out/this.tsv" && fail=1
fi
exit $fail
