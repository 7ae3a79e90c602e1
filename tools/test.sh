#!/bin/bash
# The whole test suite (README's test command): install packages, build, unit + integration tests.
set -uo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root: the tests create network namespaces and DPDK ports"
tools/install-deps.sh || fail "package installation failed"

if [ ! -f build/build.ninja ]; then
	meson setup build || fail "meson setup failed"
fi
ninja -C build || fail "build failed"

status=0
meson test -C build --print-errorlogs --suite unit || status=1
/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration --junitxml=build/pytest-results.xml "$@" || status=1

# One closing line for the whole run, from meson's and pytest's own results.
/usr/bin/python3 - <<'PY'
import json, xml.etree.ElementTree as ET, os
p = f = 0
for line in open("build/meson-logs/testlog.json"):
    r = json.loads(line)
    if r["result"] == "OK":
        p += 1
    elif r["result"] != "SKIP":
        f += 1
x = "build/pytest-results.xml"
if os.path.exists(x):
    for ts in ET.parse(x).getroot().iter("testsuite"):
        t, fl, er, sk = (int(ts.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        p += t - fl - er - sk
        f += fl + er
print(f"{p} passed, {f} failed")
PY
exit $status
