#!/usr/bin/env python3
"""Prints the live row count of a Delta table: replays _delta_log's JSON commits in version
order (they must run 0, 1, 2 ... without a gap, or it fails: a table whose early commits were
removed behind a checkpoint needs a checkpoint reader, which this is not) and sums the
numRecords of the add actions whose file no later remove dropped. Summing every add, as the
scripts once did, counts a compacted row twice. Exit 1 and a message on stderr if the log
cannot be read or an add has no numRecords.
Usage: bench/delta_rows.py TABLE_DIR"""
import json
import os
import re
import sys


def live_rows(table_dir):
    log = os.path.join(table_dir, "_delta_log")
    names = sorted(n for n in os.listdir(log) if re.fullmatch(r"\d{20}\.json", n))
    for i, n in enumerate(names):
        if int(n[:20]) != i:
            raise ValueError(f"{log}: version {i} missing (found {n})")
    live = {}
    for n in names:
        with open(os.path.join(log, n), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                act = json.loads(line)
                if "add" in act:
                    a = act["add"]
                    live[a["path"]] = json.loads(a["stats"])["numRecords"]
                elif "remove" in act:
                    live.pop(act["remove"]["path"], None)
    return sum(live.values())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        print(live_rows(sys.argv[1]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"delta_rows.py: {e}", file=sys.stderr)
        sys.exit(1)
