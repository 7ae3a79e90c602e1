"""The README's configuration reference is exactly what `shortpathd --reference` prints."""
import os
import subprocess

import sphelpers as sp


def test_readme_reference_matches_binary():
    with open(os.path.join(sp.ROOT, "README.md")) as f:
        readme = f.read()
    begin = readme.index("<!-- reference:begin -->\n") + len("<!-- reference:begin -->\n")
    end = readme.index("<!-- reference:end -->")
    ref = subprocess.run([sp.SHORTPATHD, "--reference"], capture_output=True, text=True,
                         check=True).stdout
    assert readme[begin:end] == ref, "README reference is stale: regenerate with --reference"


def test_shipped_configs_are_valid():
    for name in ("shortpathd.conf", "lab.conf"):
        path = os.path.join(sp.ROOT, "configs", name)
        r = subprocess.run([sp.SHORTPATHD, "-c", path, "--check"], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}"
        assert ": OK (" in r.stdout
