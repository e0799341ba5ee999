#!/usr/bin/env python3
"""Checks the shape of a Grafana dashboard and writes its PromQL as a Prometheus rules file.

dashboard_rules.py DASHBOARD.json OUT.rules.yml

The shape: valid JSON, a current schemaVersion, a Prometheus data-source variable named
`datasource` that every panel and target uses, unique panel ids, every panel placed.
Each target's expression becomes a recording rule `dashboard_panel_<id>_<refId>` with
Grafana's variables replaced by values Prometheus takes ($instance -> .*,
$__rate_interval -> 5m), so `promtool check rules OUT` parses every expression. Exits 1
naming the panel when the shape is wrong.
"""
import json
import re
import sys

SUBST = [("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h"),
         ("${instance}", ".*"), ("$instance", ".*")]


def fail(msg):
    print(f"dashboard_rules.py: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    path, out = sys.argv[1], sys.argv[2]
    try:
        d = json.load(open(path, encoding="utf-8"))
    except ValueError as e:
        fail(f"{path}: not valid JSON: {e}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        fail(f"{path}: schemaVersion {d.get('schemaVersion')!r}: a current Grafana needs >= 36")
    tvars = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = tvars.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail(f"{path}: no Prometheus data-source variable named datasource")
    rules, ids = [], set()
    for p in d.get("panels", []):
        pid = p.get("id")
        if not isinstance(pid, int) or pid in ids:
            fail(f"{path}: panel {p.get('title')!r}: missing or repeated id {pid!r}")
        ids.add(pid)
        if "gridPos" not in p:
            fail(f"{path}: panel {pid} has no gridPos")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"{path}: panel {pid} {p.get('title')!r} does not use ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            fail(f"{path}: panel {pid} {p.get('title')!r} has no query")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                fail(f"{path}: panel {pid} target {t.get('refId')} does not use ${{datasource}}")
            expr = t.get("expr", "")
            if not expr.strip():
                fail(f"{path}: panel {pid} target {t.get('refId')}: empty expression")
            for a, b in SUBST:
                expr = expr.replace(a, b)
            if re.search(r"\$\w", expr):
                fail(f"{path}: panel {pid}: unknown variable in {expr!r}")
            rules.append((f"dashboard_panel_{pid}_{t.get('refId')}", expr))
    with open(out, "w", encoding="utf-8") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for name, expr in rules:
            f.write(f"      - record: {name}\n        expr: {json.dumps(expr)}\n")
    print(f"{path}: {len(rules)} expressions in {len(ids)} panels -> {out}")


if __name__ == "__main__":
    main()
