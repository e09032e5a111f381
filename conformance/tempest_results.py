"""Reads a Tempest run's subunit stream against the list of tests expected to fail.

    tempest_results.py STREAM EXPECTED_LIST OUT_DIR

EXPECTED_LIST (conformance/expected/<service>.txt, or '' for none): one test a
line, `<test id without its [tags]>  <reason>`; `#` starts a comment line. A
failure it lists is an expected failure; any other failure is a real one; a
listed test that passed is reported so the list shrinks (it does not fail the
run). Tempest's own skips carry their reason in the stream and are not listed.

Prints the report and, last, `N passed, N failed, N skipped, N expected failures`.
Writes to OUT_DIR: failing.txt (the real failures), expected-failures.txt,
now-passing.txt, skipped.txt (id and Tempest's reason) and failure-details.txt
(the traceback of every failure, expected or not).
Exit status: 0, 1 when a test failed that the list does not name or no test
ran, 2 when the list or the stream cannot be read.
"""
import os
import re
import sys

import subunit
import testtools

PASSED = ("success", "xfail")
NOT_RUN = ("skip", "exists")


def test_id(raw):
    """A test's id as the list names it: without `[id-...,smoke]`, and a class's
    setUpClass (`setUpClass (tempest.x.Y)`) as `tempest.x.Y.setUpClass`."""
    m = re.match(r"^(\w+) \((.+)\)$", raw)
    if m:
        return "%s.%s" % (m.group(2), m.group(1))
    return raw.split("[", 1)[0]


def die(message):
    print("tempest_results: " + message, file=sys.stderr)
    sys.exit(2)


def read_list(path):
    """{test id: reason}; exits 2 on a line without a reason or an id listed twice."""
    listed = {}
    if not path:
        return listed
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            where = "%s:%d" % (path, n)
            if len(parts) < 2 or not parts[0].startswith("tempest."):
                die("%s: want `<tempest test id>  <reason>`: %s" % (where, line))
            if parts[0] in listed:
                die("%s: %s is listed twice" % (where, parts[0]))
            listed[parts[0]] = parts[1].strip()
    return listed


def read_stream(path):
    """{test id: (final status, details text)}: a test that ran again keeps its last result."""
    final = {}

    def on_test(test):
        text = "\n".join(d.as_text() for name, d in test["details"].items() if name in ("traceback", "reason"))
        final[test_id(test["id"])] = (test["status"], text)

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        with open(path, "rb") as f:
            subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout").run(result)
    finally:
        result.stopTestRun()
    return final


def main():
    stream, list_path, out = sys.argv[1:4]
    listed = read_list(list_path)
    try:
        final = read_stream(stream)
    except OSError as e:
        die("cannot read %s: %s" % (stream, e))

    passed = sorted(t for t, (s, _) in final.items() if s in PASSED)
    skipped = sorted(t for t, (s, _) in final.items() if s == "skip")
    # Anything else that ran (fail, uxsuccess, a worker that died: inprogress) failed.
    failures = sorted(t for t, (s, _) in final.items() if s not in PASSED and s not in NOT_RUN)
    failed = [t for t in failures if t not in listed]
    expected = [t for t in failures if t in listed]
    now_passing = [t for t in passed if t in listed]
    listed_skipped = [t for t in skipped if t in listed]
    listed_absent = sorted(t for t in listed if t not in final)

    def write(name, lines):
        with open(os.path.join(out, name), "w") as f:
            f.writelines(line + "\n" for line in lines)

    write("failing.txt", failed)
    write("expected-failures.txt", expected)
    write("now-passing.txt", now_passing)
    write("skipped.txt", ["%s  %s" % (t, final[t][1].strip().replace("\n", " ")) for t in skipped])
    write("failure-details.txt", ["=== %s%s\n%s" % (t, " (expected)" if t in listed else "", final[t][1]) for t in failures])

    shown = list_path or "(no list)"
    if failed:
        print("FAILED, not in %s (tracebacks in %s):" % (shown, os.path.join(out, "failure-details.txt")))
        for t in failed:
            print("  " + t)
    if now_passing:
        print("%d listed tests now pass: remove them from %s:" % (len(now_passing), shown))
        for t in now_passing:
            print("  " + t)
    if listed_skipped or listed_absent:
        print("%d listed tests did not fail (skipped: %d, did not run: %d): check them in %s:"
              % (len(listed_skipped) + len(listed_absent), len(listed_skipped), len(listed_absent), shown))
        for t in listed_skipped:
            print("  skipped: " + t)
        for t in listed_absent:
            print("  did not run: " + t)
    if expected:
        print("%d expected failures, as %s lists them" % (len(expected), shown))
    ran = len(passed) + len(failures) + len(skipped)
    if ran == 0:
        print("tempest_results: no test ran")
    print("%d passed, %d failed, %d skipped, %d expected failures" % (len(passed), len(failed), len(skipped), len(expected)))
    return 1 if failed or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
