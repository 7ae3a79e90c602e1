"""rte_pdump is initialised: dpdk-dumpcap attaches to a running shortpathd and captures its ports."""
import os
import subprocess

import pytest

import sphelpers as sp

NR_HUGE = "/proc/sys/vm/nr_hugepages"
HUGE_MNT = "/dev/hugepages"


@pytest.fixture
def hugepages():
    """Reserve 2 MB hugepages for this test only (a secondary process needs them), then restore."""
    with open(NR_HUGE) as f:
        before = int(f.read())
    mounted_here = False
    try:
        with open(NR_HUGE, "w") as f:
            f.write(str(max(before, 192)))
        with open(NR_HUGE) as f:
            if int(f.read()) < 160:
                pytest.skip("cannot reserve hugepages on this host")
        os.makedirs(HUGE_MNT, exist_ok=True)
        if "hugetlbfs" not in open("/proc/mounts").read():
            subprocess.run(["mount", "-t", "hugetlbfs", "nodev", HUGE_MNT], check=True)
            mounted_here = True
        yield
    finally:
        if mounted_here:
            subprocess.run(["umount", HUGE_MNT], check=False)
        with open(NR_HUGE, "w") as f:
            f.write(str(before))


def test_dumpcap_captures_vm_port(hugepages, tmp_path):
    prefix = "sp-pdump"
    api = sp.free_tcp_port()
    conf = sp.base_config(prefix, api, "unix:/nonexistent/redis.sock")
    # hugepage-backed primary: no_huge false, memory from the reserved pages
    conf = conf.replace("memory_mb = 512\nno_huge = true", "memory_mb = 256\nno_huge = false")
    conf += """
[port.vm0]
device = net_null0,size=128
role = vm
[port.up]
device = net_null1,no-rx=1
role = uplink
"""
    d = sp.Daemon(conf, "pdump").start(ready_prefix=prefix)
    out = tmp_path / "cap.pcapng"
    try:
        listing = subprocess.run(["dpdk-dumpcap", f"--file-prefix={prefix}", "-D"],
                                 capture_output=True, text=True, timeout=60)
        assert "net_null0" in listing.stdout, listing.stdout + listing.stderr
        cap = subprocess.run(["dpdk-dumpcap", f"--file-prefix={prefix}", "-i", "net_null0",
                              "-c", "50", "-w", str(out)],
                             capture_output=True, text=True, timeout=60)
        assert cap.returncode == 0, cap.stdout + cap.stderr
        # at least 50 captured frames of 128 bytes each, in a pcapng file
        data = out.read_bytes()
        assert data[:4] == b"\x0a\x0d\x0d\x0a"
        n_epb = 0
        off = 0
        while off + 8 <= len(data):
            btype = int.from_bytes(data[off:off + 4], "little")
            blen = int.from_bytes(data[off + 4:off + 8], "little")
            if btype == 6:  # enhanced packet block
                n_epb += 1
                assert int.from_bytes(data[off + 20:off + 24], "little") == 128
            off += blen
        assert n_epb >= 50  # dumpcap stops after the burst that reaches -c
        # shortpathd kept forwarding while captured
        s = sp.telemetry(prefix, "/shortpath/stats")
        assert s["rx_packets"] > 50
    finally:
        rc, log = d.stop()
    assert rc == 0, log
    assert sp.pool_in_use_after_close(log) == 0
