"""Compare two `pytest --collect-only -q` listings by test name + parameters.

    python tools/compare_test_ids.py BEFORE.txt AFTER.txt

The file/module part of each id is dropped (tests may move between files);
prints the ids of BEFORE missing from AFTER (with multiplicity) and exits 1
if there are any.
"""
import collections
import sys


def ids(path):
    c = collections.Counter()
    for line in open(path):
        line = line.strip()
        if "::" in line:
            c[line.split("::", 1)[1]] += 1
    return c


before, after = ids(sys.argv[1]), ids(sys.argv[2])
missing = before - after
print(f"before {sum(before.values())}, after {sum(after.values())}, missing {sum(missing.values())}")
for k, v in sorted(missing.items()):
    print(f"  missing: {k}" + (f" (x{v})" if v > 1 else ""))
sys.exit(1 if missing else 0)
