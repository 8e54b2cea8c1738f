#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Counts test results from meson's JUnit logs of the given build directories.

googletest executables run with meson's gtest protocol, so their cases appear one by one.
A build whose log is missing (it failed to configure or build) counts as one failure.
Prints the per-build counts, then the closing line "N passed, N failed, N skipped"."""
import sys
import xml.etree.ElementTree as ET


def count(path):
    passed = failed = skipped = 0
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main(dirs):
    total = [0, 0, 0]
    for d in dirs:
        try:
            p, f, s = count(d + "/meson-logs/testlog.junit.xml")
        except (OSError, ET.ParseError) as e:
            print(f"{d}: no test log ({e.__class__.__name__}): counted as 1 failure")
            p, f, s = 0, 1, 0
        print(f"{d}: {p} passed, {f} failed, {s} skipped")
        total = [total[0] + p, total[1] + f, total[2] + s]
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
