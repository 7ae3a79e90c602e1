"""shortpathd --check: every kind of config error names its [section] key; bad devices at start."""
import os
import shutil
import subprocess
import tempfile

import pytest

import pcaps
from sphelpers import RUNTIME, SHORTPATHD, ROOT, free_tcp_port, pool_in_use_after_close

VM0, VM1 = pcaps.VM0_MAC, pcaps.VM1_MAC


def base():
    """A valid config as [(section, [[key, value], ...]), ...] (devices need not exist)."""
    return [
        ("eal", [["file_prefix", "spt-check"], ["memory_mb", "512"], ["no_huge", "true"],
                 ["no_pci", "true"]]),
        ("lcores", [["main", "0"], ["workers", "1"]]),
        ("port.vm0", [["device", "net_null0"], ["role", "vm"], ["mac", VM0]]),
        ("port.vm1", [["device", "net_null1"], ["role", "vm"], ["mac", VM1]]),
        ("port.uplink", [["device", "net_null2"], ["role", "uplink"], ["mtu", "9000"]]),
        ("redis", [["address", "127.0.0.1:6379"], ["reconnect_min_ms", "100"]]),
        ("api", [["listen", "127.0.0.1:9180"]]),
        ("dataplane", [["burst", "32"], ["mbufs", "8191"], ["mbuf_cache", "64"]]),
        ("log", [["level", "info"]]),
    ]


def render(sections, tail=""):
    text = ""
    for name, items in sections:
        text += f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in items) + "\n"
    return text + tail


def with_key(section, key, value):
    """The base config with one key set (or added), or dropped when value is None."""
    return with_keys((section, key, value))


def with_keys(*changes, drop_sections=(), tail=""):
    """The base config with (section, key, value) changes applied and some sections left out."""
    cfg = base()
    for section, key, value in changes:
        items = dict(cfg)[section]
        for item in items:
            if item[0] == key:
                if value is None:
                    items.remove(item)
                else:
                    item[1] = value
                break
        else:
            items.append([key, value])
    return render([s for s in cfg if s[0] not in drop_sections], tail)


def check(text=None, path=None):
    """shortpathd -c FILE --check: (exit code, stdout, stderr)."""
    with tempfile.TemporaryDirectory(prefix="sptest-check-") as d:
        if path is None:
            path = os.path.join(d, "c.conf")
            with open(path, "w") as f:
                f.write(text)
        r = subprocess.run([SHORTPATHD, "-c", path, "--check"], capture_output=True,
                           text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def assert_rejected(text, prefix, exact=None, contains=()):
    rc, out, err = check(text)
    lines = err.strip().splitlines()
    assert rc == 1, f"rc {rc}; stdout {out!r}; stderr {err!r}"
    assert out == ""
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(prefix), f"{line!r} does not start with {prefix!r}"
    if exact is not None:
        assert line == exact
    for c in contains:
        assert c in line, f"{c!r} not in {line!r}"
    return line


def test_valid_config_ok():
    rc, out, err = check(render(base()))
    assert rc == 0, err
    assert out.startswith("config: ") and out.strip().endswith("OK (3 ports, 1 workers)")
    assert err == ""


def test_production_example_config_ok():
    rc, out, err = check(path=os.path.join(ROOT, "configs", "shortpathd.conf"))
    assert rc == 0, err
    assert "OK (3 ports, 2 workers)" in out


def test_unknown_section():
    assert_rejected(render(base(), "[bogus]\nx = 1\n"), "config: [bogus]: unknown section")


def test_unknown_key_exact_message():
    assert_rejected(with_key("dataplane", "bogus", "1"), "config: [dataplane] bogus:",
                    exact="config: [dataplane] bogus: unknown key")


def test_unknown_key_in_port_section():
    assert_rejected(with_key("port.vm1", "colour", "red"), "config: [port.vm1] colour:",
                    exact="config: [port.vm1] colour: unknown key")


@pytest.mark.parametrize("section,key,value", [
    ("dataplane", "burst", "lots"), ("dataplane", "burst", "32x"), ("lcores", "main", "1.5"),
    ("port.vm0", "mtu", "9k"), ("redis", "db", "-"),
])
def test_bad_int(section, key, value):
    assert_rejected(with_key(section, key, value), f"config: [{section}] {key}:",
                    exact=f"config: [{section}] {key}: '{value}' is not an integer")


@pytest.mark.parametrize("section,key,value,lo,hi", [
    ("dataplane", "burst", "513", 4, 512), ("dataplane", "burst", "0", 4, 512),
    ("port.vm1", "mtu", "67", 68, 9600), ("port.uplink", "mtu", "9601", 68, 9600),
    ("redis", "heartbeat_ms", "99", 100, 60000), ("lcores", "main", "1024", 0, 1023),
    ("dataplane", "mbufs", "-1", 1023, 16777215),
])
def test_out_of_range_int_names_the_range(section, key, value, lo, hi):
    assert_rejected(with_key(section, key, value), f"config: [{section}] {key}:",
                    exact=f"config: [{section}] {key}: {value} is out of range {lo}..{hi}")


@pytest.mark.parametrize("section,key", [("port.uplink", "rx_desc"), ("port.vm0", "tx_desc"),
                                         ("dataplane", "punt_ring_size")])
def test_not_power_of_two(section, key):
    assert_rejected(with_key(section, key, "1000"), f"config: [{section}] {key}:",
                    exact=f"config: [{section}] {key}: 1000 is not a power of two")


@pytest.mark.parametrize("section,key", [("eal", "no_pci"), ("port.vm0", "promiscuous"),
                                         ("eal", "telemetry")])
def test_bad_bool(section, key):
    assert_rejected(with_key(section, key, "maybe"), f"config: [{section}] {key}:",
                    contains=["'maybe' is not a boolean"])


@pytest.mark.parametrize("value", ["02:00:00:00:00", "02:00:00:00:00:0g", "02-00-00-00-00-01",
                                   "0200.0000.0001", "02:00:00:00:00:01:02", "2:0:0:0:0:1"])
def test_bad_mac(value):
    assert_rejected(with_key("port.vm0", "mac", value), "config: [port.vm0] mac:",
                    exact=f"config: [port.vm0] mac: '{value}' is not a MAC address "
                          "(aa:bb:cc:dd:ee:ff)")


@pytest.mark.parametrize("value", ["+2:00:00:00:00:01", "-2:00:00:00:00:01"])
def test_signed_mac_octet_rejected(value):
    assert_rejected(with_key("port.vm0", "mac", value), "config: [port.vm0] mac:")


@pytest.mark.parametrize("value", ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01"])
def test_multicast_mac(value):
    assert_rejected(with_key("port.vm1", "mac", value), "config: [port.vm1] mac:",
                    exact=f"config: [port.vm1] mac: {value} is a multicast address")


def test_duplicate_mac():
    assert_rejected(with_key("port.vm1", "mac", VM0), "config: [port.vm1] mac:",
                    contains=["same MAC as [port.vm0]"])


def test_mac_on_uplink():
    assert_rejected(with_key("port.uplink", "mac", "02:00:00:00:00:fe"),
                    "config: [port.uplink] mac:", contains=["only vm ports"])


@pytest.mark.parametrize("section,key,value,why", [
    ("redis", "address", "localhost", "expected host:port"),
    ("redis", "address", "127.0.0.1:70000", "port must be 1..65535"),
    ("redis", "address", "127.0.0.1:", "port must be 1..65535"),
    ("redis", "address", ":6379", "expected host:port"),
    ("redis", "address", "unix:redis.sock", "must be absolute"),
    ("redis", "address", "::1:6379x", "port must be 1..65535"),
    ("redis", "address", "[::1:6379", "brackets"),
    ("api", "listen", "127.0.0.1:http", "port must be 1..65535"),
    ("api", "listen", "127.0.0.1:0", "port must be 1..65535"),
])
def test_bad_host_port(section, key, value, why):
    assert_rejected(with_key(section, key, value), f"config: [{section}] {key}:",
                    contains=[f"'{value}'", why])


def test_api_listen_unix_rejected_by_check():
    assert_rejected(with_key("api", "listen", "unix:/run/shortpath/api.sock"),
                    "config: [api] listen:")


@pytest.mark.parametrize("key,why", [("device", "required key missing"),
                                     ("role", "required key missing")])
def test_missing_required_port_key(key, why):
    assert_rejected(with_key("port.vm1", key, None), f"config: [port.vm1] {key}:",
                    contains=[why])


def test_empty_port_section():
    assert_rejected(render(base(), "[port.vm2]\n"), "config: [port.vm2] device:",
                    exact="config: [port.vm2] device: required key missing")


def test_bad_role():
    assert_rejected(with_key("port.vm1", "role", "router"), "config: [port.vm1] role:",
                    contains=["'router' is not one of vm|uplink"])


def test_two_uplinks():
    assert_rejected(with_keys(("port.vm1", "role", "uplink"), ("port.vm1", "mac", None)),
                    "config: [port.uplink] role:",
                    exact="config: [port.uplink] role: a second uplink port: exactly one "
                          "uplink port is needed")


def test_no_uplink():
    assert_rejected(with_key("port.uplink", "role", "vm"), "config: [port.*] role:",
                    exact="config: [port.*] role: exactly one uplink port is needed, found 0")


def test_no_vm_port():
    assert_rejected(with_keys(drop_sections=("port.vm0", "port.vm1")), "config: [port.*] role:",
                    exact="config: [port.*] role: at least one vm port is needed")


@pytest.mark.parametrize("main,workers", [("1", "1"), ("0", "0"), ("2", "1-3")])
def test_worker_lcore_equal_to_main(main, workers):
    assert_rejected(with_keys(("lcores", "main", main), ("lcores", "workers", workers)),
                    "config: [lcores] workers:",
                    exact=f"config: [lcores] workers: lcore {main} is the main lcore")


@pytest.mark.parametrize("workers", ["1-0", "1,1", "a", "1;2", ""])
def test_bad_worker_list(workers):
    text = with_key("lcores", "workers", workers) if workers else \
        render(base()).replace("workers = 1\n", "workers =\n")
    rc, _out, err = check(text)
    assert rc == 1
    if workers:
        assert err.strip() == (f"config: [lcores] workers: '{workers}' is not a list of "
                               "distinct lcores (e.g. 1 or 1-3,5)")


def test_duplicate_key():
    text = render(base()).replace("burst = 32\n", "burst = 32\nburst = 64\n")
    assert_rejected(text, "config: [dataplane] burst:",
                    exact="config: [dataplane] burst: set twice")


def test_duplicate_section():
    assert_rejected(render(base(), "[api]\nlisten = 127.0.0.1:9181\n"), "config: [api]:",
                    contains=["section appears twice"])


def test_duplicate_device():
    assert_rejected(with_key("port.vm1", "device", "net_null0"), "config: [port.vm1] device:",
                    exact="config: [port.vm1] device: same device (net_null0) as [port.vm0]")


@pytest.mark.parametrize("arg,opt", [
    ("--vdev=net_null9", "--vdev"), ("--vdev net_null9", "--vdev"), ("-l 0-1", "-l"),
    ("--lcores=0@0,1@1", "--lcores"), ("-c 0x3", "-c"), ("--main-lcore=1", "--main-lcore"),
    ("--file-prefix=other", "--file-prefix"), ("-m 256", "-m"), ("--no-huge", "--no-huge"),
    ("--log-level=8 --no-pci", "--no-pci"),
])
def test_reserved_eal_arg(arg, opt):
    assert_rejected(with_key("eal", "extra_args", arg), "config: [eal] extra_args:",
                    contains=[f"{opt} is set by shortpathd"])


@pytest.mark.parametrize("arg", ["-l1", "-c0x3", "-m512"])
def test_reserved_eal_arg_attached_value(arg):
    assert_rejected(with_key("eal", "extra_args", arg), "config: [eal] extra_args:")


def test_no_huge_needs_memory():
    assert_rejected(with_key("eal", "memory_mb", "0"), "config: [eal] memory_mb:",
                    contains=["must be set"])


def test_reconnect_max_below_min():
    assert_rejected(with_key("redis", "reconnect_max_ms", "50"),
                    "config: [redis] reconnect_max_ms:", contains=["smaller than reconnect_min_ms"])


def test_mbuf_cache_above_half_of_mbufs():
    assert_rejected(with_keys(("dataplane", "mbufs", "1023"), ("dataplane", "mbuf_cache", "512")),
                    "config: [dataplane] mbuf_cache:", contains=["at most half of mbufs"])


def test_bad_log_level():
    assert_rejected(with_key("log", "level", "loud"), "config: [log] level:",
                    contains=["'loud' is not one of none|emerg"])


def test_bad_port_name():
    assert_rejected(render(base(), "[port.vm/2]\ndevice = net_null5\nrole = vm\n"),
                    "config: [port.vm/2]:", contains=["port name may use"])


def test_explicit_empty_mac_means_learn():
    rc, out, err = check(with_key("port.vm1", "mac", ""))
    assert rc == 0, err


def test_syntax_error_names_the_line():
    rc, out, err = check(render(base(), "this is not ini\n"))
    assert rc == 1 and out == ""
    assert ":" in err and "'this is not ini' is not 'key = value'" in err


def test_missing_file():
    path = "/nonexistent/shortpathd.conf"
    rc, out, err = check(path=path)
    assert rc == 1 and out == ""
    assert err.strip() == f"config: {path}: No such file or directory"


def test_device_missing_at_start_exits_1(cleanup):
    """A device that fails to probe stops start-up (not --check) naming [port.NAME] device."""
    d = tempfile.mkdtemp(prefix="sptest-baddev-")
    cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    prefix = f"spt-baddev-{os.getpid()}"
    paths = pcaps.TrafficSet(full=False).write_inputs(d)
    text = (pcaps.port_sections(paths)
            .replace(f"net_pcap1,rx_pcap={paths['vm1'][0]}",
                     "net_pcap5,rx_pcap=/nonexistent.pcap"))
    text = render(base()[:2] + base()[5:]).replace("spt-check", prefix) + text
    text = text.replace("127.0.0.1:9180", f"127.0.0.1:{free_tcp_port()}")
    conf = os.path.join(d, "c.conf")
    with open(conf, "w") as f:
        f.write(text)
    assert check(path=conf)[0] == 0  # the config itself is valid
    cleanup(lambda: shutil.rmtree(os.path.join(RUNTIME, prefix), ignore_errors=True))
    r = subprocess.run([SHORTPATHD, "-c", conf], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("config: ")]
    assert lines == ["config: [port.vm1] device: no DPDK port 'net_pcap5' (the device failed "
                     "to probe: see the EAL lines above)"], r.stderr
    assert pool_in_use_after_close(r.stdout + r.stderr) == 0
