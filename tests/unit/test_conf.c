/* cmocka tests of the config schema (lib/sp_conf.c) and the rte_cfgfile loader (control/). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sp_conf.h"
#include "sp_config.h"

#define GOOD_PORTS                                                                                 \
	"[port.vm0]\ndevice = net_null0\nrole = vm\nmac = 02:00:00:00:00:01\n"                     \
	"[port.up]\ndevice = net_null1\nrole = uplink\n"

static char conf_path[64];
static char err[512];
static struct sp_conf cfg;

/* Write text to a temporary file and load it; returns the loader's result. */
static int
load(const char *text)
{
	FILE *f;
	int fd;

	snprintf(conf_path, sizeof(conf_path), "/tmp/sp_test_conf_XXXXXX");
	fd = mkstemp(conf_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	int rc = sp_config_load(conf_path, &cfg, err, sizeof(err));
	unlink(conf_path);
	return rc;
}

static void
expect_error(const char *text, const char *prefix)
{
	assert_int_not_equal(load(text), 0);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("expected error starting '%s', got '%s'", prefix, err);
}

static void
test_defaults_and_ports(void **state)
{
	(void)state;
	assert_int_equal(load(GOOD_PORTS), 0);
	assert_string_equal(cfg.file_prefix, "shortpath");
	assert_int_equal(cfg.main_lcore, 0);
	assert_int_equal(cfg.n_workers, 1);
	assert_int_equal(cfg.worker_lcores[0], 1);
	assert_int_equal(cfg.burst, 32);
	assert_int_equal(cfg.mbufs, 16383);
	assert_string_equal(cfg.redis_address, "127.0.0.1:6379");
	assert_string_equal(cfg.api_listen, "127.0.0.1:9180");
	assert_int_equal(cfg.log_level, 7); /* info */
	assert_int_equal(cfg.n_ports, 2);
	assert_string_equal(cfg.ports[0].name, "vm0");
	assert_int_equal(cfg.ports[0].role, SP_PORT_ROLE_VM);
	assert_true(cfg.ports[0].has_mac);
	assert_int_equal(cfg.ports[0].mac[5], 1);
	assert_int_equal(cfg.ports[0].rx_desc, 1024);
	assert_true(cfg.ports[0].promiscuous);
	assert_int_equal(cfg.ports[1].role, SP_PORT_ROLE_UPLINK);
	assert_false(cfg.ports[1].has_mac);
}

static void
test_full_config(void **state)
{
	(void)state;
	assert_int_equal(
		load("[eal]\nfile_prefix = x\nmemory_mb = 256\nno_huge = yes\nno_pci = on\n"
		     "[lcores]\nmain = 2\nworkers = 0-1,4\n"
		     "[redis]\naddress = unix:/run/r.sock\ndb = 3\n"
		     "[api]\nlisten = [::1]:8080\n"
		     "[dataplane]\nburst = 64\nrx_desc_unused_guard = 1\n" GOOD_PORTS),
		-EINVAL);
	assert_string_equal(err, "config: [dataplane] rx_desc_unused_guard: unknown key");
	assert_int_equal(
		load("[eal]\nfile_prefix = x\nmemory_mb = 256\nno_huge = yes\nno_pci = on\n"
		     "[lcores]\nmain = 2\nworkers = 0-1,4\n"
		     "[redis]\naddress = unix:/run/r.sock\ndb = 3\n"
		     "[api]\nlisten = [::1]:8080\n"
		     "[dataplane]\nburst = 64\n[log]\nlevel = DEBUG\n" GOOD_PORTS),
		0);
	assert_true(cfg.no_huge);
	assert_true(cfg.no_pci);
	assert_int_equal(cfg.n_workers, 3);
	assert_int_equal(cfg.worker_lcores[2], 4);
	assert_int_equal(cfg.redis_db, 3);
	assert_int_equal(cfg.burst, 64);
	assert_int_equal(cfg.log_level, 8);
}

static void
test_errors_name_section_and_key(void **state)
{
	(void)state;
	expect_error("[bogus]\nx = 1\n" GOOD_PORTS, "config: [bogus]: unknown section");
	expect_error("[dataplane]\nburst = many\n" GOOD_PORTS,
		     "config: [dataplane] burst: 'many' is not an integer");
	expect_error("[dataplane]\nburst = 0\n" GOOD_PORTS,
		     "config: [dataplane] burst: 0 is out of range 4..512");
	expect_error(GOOD_PORTS "[port.vm1]\ndevice = net_null0,size=128\nrole = vm\n",
		     "config: [port.vm1] device: same device (net_null0) as [port.vm0]");
	expect_error("[port.vm0]\ndevice = 0000:01:00.0\nrole = vm\n"
		     "[port.up]\ndevice = 01:00.0,txq_inline=128\nrole = uplink\n",
		     "config: [port.up] device: same device (0000:01:00.0) as [port.vm0]");
	expect_error("[redis]\naddress = redis.example:6379\n" GOOD_PORTS,
		     "config: [redis] address: 'redis.example:6379': the host must be a numeric");
	expect_error("[dataplane]\nburst = 12x\n" GOOD_PORTS, "config: [dataplane] burst:");
	expect_error("[eal]\nno_huge = maybe\n" GOOD_PORTS, "config: [eal] no_huge:");
	expect_error("[eal]\nno_huge = true\n" GOOD_PORTS, "config: [eal] memory_mb:");
	expect_error(GOOD_PORTS "[port.vm1]\ndevice = net_null2\nrole = vm\nrx_desc = 1000\n",
		     "config: [port.vm1] rx_desc: 1000 is not a power of two");
	expect_error(GOOD_PORTS "[port.vm1]\ndevice = net_null2\nrole = vm\nmac = 02:00:00:00:01\n",
		     "config: [port.vm1] mac:");
	expect_error(GOOD_PORTS
		     "[port.vm1]\ndevice = net_null2\nrole = vm\nmac = 01:00:5e:00:00:01\n",
		     "config: [port.vm1] mac: 01:00:5e:00:00:01 is a multicast address");
	expect_error(GOOD_PORTS "[port.vm1]\ndevice = net_null2\nrole = router\n",
		     "config: [port.vm1] role: 'router' is not one of vm|uplink");
	expect_error(GOOD_PORTS "[port.vm1]\nrole = vm\n", "config: [port.vm1] device: required");
	expect_error(GOOD_PORTS "[port.vm1]\ndevice = net_null2\n",
		     "config: [port.vm1] role: required");
	expect_error(GOOD_PORTS "[port.up2]\ndevice = net_null2\nrole = uplink\n",
		     "config: [port.up2] role: a second uplink port");
	expect_error(GOOD_PORTS
		     "[port.vm1]\ndevice = net_null2\nrole = vm\nmac = +2:00:00:00:00:01\n",
		     "config: [port.vm1] mac: '+2:00:00:00:00:01' is not a MAC address");
	expect_error("[api]\nlisten = unix:/run/api.sock\n" GOOD_PORTS,
		     "config: [api] listen: 'unix:/run/api.sock': address:port only");
	expect_error("[dataplane]\nburst = 0x10\n" GOOD_PORTS,
		     "config: [dataplane] burst: '0x10' is not an integer");
	expect_error("[lcores]\nworkers =\n" GOOD_PORTS, "config: [lcores] workers:");
	expect_error("[port.vm0]\ndevice = net_null0\nrole = vm\n", "config: [port.*] role:");
	expect_error("[port.up]\ndevice = net_null0\nrole = uplink\n",
		     "config: [port.*] role: at least one vm port");
	expect_error(GOOD_PORTS "[port.vm1]\ndevice = net_null0\nrole = vm\n",
		     "config: [port.vm1] device: same device (net_null0) as [port.vm0]");
	expect_error(GOOD_PORTS
		     "[port.vm1]\ndevice = net_null2\nrole = vm\nmac = 02:00:00:00:00:01\n",
		     "config: [port.vm1] mac: same MAC as [port.vm0]");
	expect_error("[port.up]\ndevice = net_null1\nrole = uplink\nmac = 02:00:00:00:00:09\n"
		     "[port.vm0]\ndevice = net_null0\nrole = vm\n",
		     "config: [port.up] mac: only vm ports take a MAC");
	expect_error("[lcores]\nmain = 1\nworkers = 1\n" GOOD_PORTS,
		     "config: [lcores] workers: lcore 1 is the main lcore");
	expect_error("[lcores]\nworkers = 1,1\n" GOOD_PORTS, "config: [lcores] workers:");
	expect_error("[lcores]\nworkers = 3-1\n" GOOD_PORTS, "config: [lcores] workers:");
	expect_error("[redis]\naddress = localhost\n" GOOD_PORTS, "config: [redis] address:");
	expect_error("[redis]\naddress = localhost:70000\n" GOOD_PORTS,
		     "config: [redis] address: 'localhost:70000': port must be 1..65535");
	expect_error("[redis]\naddress = unix:relative.sock\n" GOOD_PORTS,
		     "config: [redis] address:");
	expect_error("[redis]\nreconnect_min_ms = 500\nreconnect_max_ms = 100\n" GOOD_PORTS,
		     "config: [redis] reconnect_max_ms: smaller than reconnect_min_ms");
	expect_error("[dataplane]\nburst = 32\nburst = 64\n" GOOD_PORTS,
		     "config: [dataplane] burst: set twice");
	expect_error("[port.v m]\ndevice = net_null0\nrole = vm\n", "config: [port.v m]:");
	expect_error("[log]\nlevel = loud\n" GOOD_PORTS, "config: [log] level:");
	expect_error("[port.vm0]\ndevice = net_null0\nrole = vm\nqueues = 1\n"
		     "[port.up]\ndevice = net_null1\nrole = uplink\n[lcores]\nworkers = 1-2\n",
		     "config: [port.vm0] queues: 1 queues for 2 workers");
}

static void
test_file_errors(void **state)
{
	(void)state;
	err[0] = '\0';
	assert_int_not_equal(sp_config_load("/nonexistent/shortpathd.conf", &cfg, err, sizeof(err)),
			     0);
	assert_string_equal(err, "config: /nonexistent/shortpathd.conf: No such file or directory");
	expect_error("this is not ini\n", "config: /tmp/sp_test_conf_");
	assert_non_null(strstr(err, ":1: 'this is not ini' is not 'key = value'"));
	expect_error("[eal]\nfile_prefix x\n" GOOD_PORTS, "config: /tmp/sp_test_conf_");
	assert_non_null(strstr(err, ":2: 'file_prefix x' is not 'key = value'"));
	expect_error("burst = 3\n[eal]\n" GOOD_PORTS, "config: /tmp/sp_test_conf_");
	assert_non_null(strstr(err, ":1: 'burst = 3' is outside any [section]"));
	expect_error("[eal\n" GOOD_PORTS, "config: /tmp/sp_test_conf_");
	/* comments: whole-line and trailing */
	assert_int_equal(
		load("# shortpath\n[dataplane]  # fast path\nburst = 16 # small\n" GOOD_PORTS), 0);
	assert_int_equal(cfg.burst, 16);
	/* an explicit empty value is the empty string: mac = means "learn" */
	assert_int_equal(load("[port.vm0]\ndevice = net_null0\nrole = vm\nmac =\n"
			      "[port.up]\ndevice = net_null1\nrole = uplink\n"),
			 0);
	assert_false(cfg.ports[0].has_mac);
	/* decimal, leading zeros included */
	assert_int_equal(load("[dataplane]\nburst = 0100\n" GOOD_PORTS), 0);
	assert_int_equal(cfg.burst, 100);
}

static void
test_device_names(void **state)
{
	char name[64];
	bool pci;

	(void)state;
	sp_conf_device_name("0000:3B:00.1", name, sizeof(name), &pci);
	assert_true(pci);
	assert_string_equal(name, "0000:3b:00.1");
	sp_conf_device_name("3b:00.1,rxq=2", name, sizeof(name), &pci);
	assert_true(pci);
	assert_string_equal(name, "0000:3b:00.1");
	sp_conf_device_name("net_vhost0,iface=/run/x.sock", name, sizeof(name), &pci);
	assert_false(pci);
	assert_string_equal(name, "net_vhost0");
	sp_conf_device_name("net_null1", name, sizeof(name), &pci);
	assert_false(pci);
	assert_string_equal(name, "net_null1");
}

static void
test_long_values(void **state)
{
	char text[600];

	(void)state;
	snprintf(text, sizeof(text), "[redis]\npassword = %0300d\n" GOOD_PORTS, 7);
	expect_error(text, "config: /tmp/sp_test_conf_");
	assert_non_null(strstr(err, ":2: name or value longer than 63/255 characters"));
}

static void
test_cpulist(void **state)
{
	unsigned int ids[8];

	(void)state;
	assert_int_equal(sp_conf_parse_cpulist("1", ids, 8), 1);
	assert_int_equal(sp_conf_parse_cpulist("1-3,5", ids, 8), 4);
	assert_int_equal(ids[3], 5);
	assert_int_equal(sp_conf_parse_cpulist("0-9", ids, 8), -ENOSPC);
	assert_int_equal(sp_conf_parse_cpulist("", ids, 8), -EINVAL);
	assert_int_equal(sp_conf_parse_cpulist("a", ids, 8), -EINVAL);
	assert_int_equal(sp_conf_parse_cpulist("1,", ids, 8), 1);
	assert_int_equal(sp_conf_parse_cpulist("1-", ids, 8), -EINVAL);
}

/* Every key of the table appears in the reference, and every default passes its own rules. */
static void
test_reference_and_defaults_valid(void **state)
{
	const struct sp_conf_key *k;
	struct sp_conf c;
	char *buf;
	int n;

	(void)state;
	n = sp_conf_reference(NULL, 0);
	assert_true(n > 0);
	buf = malloc((size_t)n + 1);
	assert_int_equal(sp_conf_reference(buf, (size_t)n + 1), n);
	for (k = sp_conf_keys; k->section != NULL; k++) {
		char needle[96];

		snprintf(needle, sizeof(needle), "| `%s` |", k->key);
		if (strstr(buf, needle) == NULL)
			fail_msg("key %s missing from the reference", k->key);
		sp_conf_defaults(&c);
		if (k->def != NULL && strcmp(k->section, "port.*") != 0)
			assert_int_equal(
				sp_conf_set(&c, k->section, k->key, k->def, err, sizeof(err)), 0);
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_ports),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_errors_name_section_and_key),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_cpulist),
		cmocka_unit_test(test_device_names),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_reference_and_defaults_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
