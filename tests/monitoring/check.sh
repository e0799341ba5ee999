#!/bin/sh
# The monitoring files shipped with runnel-server (packaging/monitoring/): the alerting rules
# pass `promtool check rules` and their unit tests (`promtool test rules`), and the Grafana
# dashboard is valid JSON whose every PromQL expression parses. promtool has no expression
# check of its own in every version, so each panel expression becomes a recording rule of a
# generated rules file that `promtool check rules` parses (dashboard_rules.py). Whether the
# metric names exist in a real server's /metrics is e2e_monitoring's job
# (tests/integration/monitoring.test.mjs). Every alert must have its runbook: a heading of its
# name in docs/operations.md and the annotation naming it.
#   check.sh SRC_DIR WORK_DIR      the checks (ctest monitoring_rules)
#   check.sh --self-test SRC_DIR WORK_DIR
#                                  a dashboard with a broken expression must fail the check
set -eu
self=0
if [ "${1:-}" = --self-test ]; then
	self=1
	shift
fi
src=$1
work=$2
mon=$src/packaging/monitoring
here=$src/tests/monitoring
if ! command -v promtool >/dev/null 2>&1; then
	echo "check.sh: promtool not found: install the Debian package prometheus (make deps)" >&2
	exit 1
fi
mkdir -p "$work"
if [ $self = 1 ]; then
	# the shipped dashboard with one expression cut short: the check must refuse it
	python3 - "$mon/runnel-server.dashboard.json" "$work/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = next(p for p in d["panels"] if p.get("targets"))["targets"][0]
t["expr"] = "rate(" + t["expr"]
json.dump(d, open(sys.argv[2], "w"))
PY
	python3 "$here/dashboard_rules.py" "$work/broken.json" "$work/broken.rules.yml"
	if promtool check rules "$work/broken.rules.yml" >"$work/broken.out" 2>&1; then
		echo "check.sh --self-test: a broken expression passed promtool check rules" >&2
		exit 1
	fi
	grep -q 'dashboard_panel' "$work/broken.out" || {
		echo "check.sh --self-test: promtool failed without naming the rule:" >&2
		cat "$work/broken.out" >&2
		exit 1
	}
	echo "check.sh --self-test: the broken expression was refused"
	exit 0
fi
promtool check rules "$mon/runnel-server.rules.yml"
# the tests name the rules file relative to themselves
(cd "$mon" && promtool test rules runnel-server.rules.test.yml)
python3 "$here/dashboard_rules.py" "$mon/runnel-server.dashboard.json" "$work/dashboard.rules.yml"
promtool check rules "$work/dashboard.rules.yml"
# every alert has its runbook: the heading its annotation names in docs/operations.md
missing=$(grep -o 'alert: [A-Za-z]*' "$mon/runnel-server.rules.yml" | cut -d' ' -f2 | while read -r a; do
	grep -q "^### $a\$" "$src/docs/operations.md" || echo "$a"
	grep -q "runbook: \"docs/operations.md, Alerts and dashboards: $a\"" "$mon/runnel-server.rules.yml" || echo "$a (annotation)"
done)
if [ -n "$missing" ]; then
	echo "check.sh: alerts without their runbook heading in docs/operations.md:" $missing >&2
	exit 1
fi
echo "check.sh: every alert has its runbook"
