"""The README's configuration reference is exactly what `shortpathd --reference` prints, and the shipped configs pass --check."""
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


def test_shipped_configs_are_valid(tmp_path):
    """Both shipped configs pass --check; lab.conf's node key file exists only while the lab is
    up, so it is checked with a stand-in key file (mode 0600) at that path's place."""
    key = tmp_path / "nodemgr.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    for name in ("shortpathd.conf", "lab.conf"):
        with open(os.path.join(sp.ROOT, "configs", name)) as f:
            text = f.read()
        if name == "lab.conf":
            assert "node_keys = /run/shortpath-lab/svc/keys/nodemgr.key" in text
            text = text.replace("/run/shortpath-lab/svc/keys/nodemgr.key", str(key))
        path = tmp_path / name
        path.write_text(text)
        r = subprocess.run([sp.SHORTPATHD, "-c", str(path), "--check"], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}"
        assert ": OK (" in r.stdout
