/* shortpathd entry point: arguments, config, EAL, dataplane, control loop, orderly shutdown. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_pdump.h>

#include "sp_config.h"
#include "sp_ctl.h"
#include "sp_dp.h"
#include "sp_log.h"
#include "sp_nodeauth.h"

#ifndef SP_VERSION
#define SP_VERSION "dev"
#endif

#define SP_DEFAULT_CONFIG "/etc/shortpath/shortpathd.conf"
#define SP_MAX_EAL_ARGS 128

struct sp_eal_args {
	int argc;
	char *argv[SP_MAX_EAL_ARGS];
	char buf[8192];
	size_t used;
};

static int
eal_push(struct sp_eal_args *a, const char *s)
{
	size_t n = strlen(s) + 1;

	if (a->argc == SP_MAX_EAL_ARGS - 1 || a->used + n > sizeof(a->buf))
		return -ENOSPC;
	memcpy(a->buf + a->used, s, n);
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += n;
	return 0;
}

/* EAL arguments from [eal], [lcores] and the ports' devices. */
static int
build_eal_args(const struct sp_conf *cfg, struct sp_eal_args *a, char *err, size_t errlen)
{
	static const char *const reserved[] = {
		"-l",	  "-c", "--lcores",  "--main-lcore", "--file-prefix",
		"--vdev", "-m", "--no-huge", "--no-pci",     "--no-telemetry"};
	char tmp[SP_CONF_STR_LEN], *tok, *save = NULL;
	unsigned int i, j;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	rc |= eal_push(a, "shortpathd");
	snprintf(tmp, sizeof(tmp), "%" PRId64, cfg->main_lcore);
	for (i = 0; i < cfg->n_workers; i++)
		snprintf(tmp + strlen(tmp), sizeof(tmp) - strlen(tmp), ",%u",
			 cfg->worker_lcores[i]);
	rc |= eal_push(a, "-l");
	rc |= eal_push(a, tmp);
	snprintf(tmp, sizeof(tmp), "%" PRId64, cfg->main_lcore);
	rc |= eal_push(a, "--main-lcore");
	rc |= eal_push(a, tmp);
	rc |= eal_push(a, "--file-prefix");
	rc |= eal_push(a, cfg->file_prefix);
	if (cfg->memory_mb > 0) {
		snprintf(tmp, sizeof(tmp), "%" PRId64, cfg->memory_mb);
		rc |= eal_push(a, "-m");
		rc |= eal_push(a, tmp);
	}
	if (cfg->no_huge)
		rc |= eal_push(a, "--no-huge");
	if (cfg->no_pci)
		rc |= eal_push(a, "--no-pci");
	if (!cfg->telemetry)
		rc |= eal_push(a, "--no-telemetry");
	snprintf(tmp, sizeof(tmp), "--log-level=%" PRId64, cfg->log_level);
	rc |= eal_push(a, tmp);
	for (i = 0; i < cfg->n_ports; i++) {
		bool pci;

		char name[SP_CONF_STR_LEN];

		sp_conf_device_name(cfg->ports[i].device, name, sizeof(name), &pci);
		if (pci && cfg->no_pci) {
			snprintf(err, errlen,
				 "config: [port.%s] device: PCI device with [eal] no_pci = true",
				 cfg->ports[i].name);
			return -EINVAL;
		}
		rc |= eal_push(a, pci ? "-a" : "--vdev");
		rc |= eal_push(a, cfg->ports[i].device);
	}
	snprintf(tmp, sizeof(tmp), "%s", cfg->eal_extra);
	for (tok = strtok_r(tmp, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		for (j = 0; j < RTE_DIM(reserved); j++) {
			size_t n = strlen(reserved[j]);

			/* "-l1" is "-l 1": a short option takes its value attached */
			if (strncmp(tok, reserved[j], n) == 0 &&
			    (tok[n] == '\0' || tok[n] == '=' || n == 2)) {
				snprintf(
					err, errlen,
					"config: [eal] extra_args: %s is set by shortpathd from "
					"other keys ([lcores], [eal] file_prefix/memory_mb/no_huge/"
					"no_pci/telemetry, [port.NAME] device)",
					reserved[j]);
				return -EINVAL;
			}
		}
		rc |= eal_push(a, tok);
	}
	if (rc != 0) {
		snprintf(err, errlen, "config: too many EAL arguments");
		return -ENOSPC;
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: shortpathd [-c FILE] [--check] [--reference] [--version]\n"
		   "  -c, --config FILE  configuration file (default " SP_DEFAULT_CONFIG ")\n"
		   "      --check        validate the config and node keys file, exit (0 = valid)\n"
		   "      --reference    print every configuration key (markdown) and exit\n"
		   "      --version      print the version and exit\n");
}

static int
print_reference(void)
{
	int n = sp_conf_reference(NULL, 0);
	char *buf = malloc((size_t)n + 1);

	if (buf == NULL)
		return 1;
	sp_conf_reference(buf, (size_t)n + 1);
	fputs(buf, stdout);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
		{"reference", no_argument, NULL, 'r'},	  {"version", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},	  {NULL, 0, NULL, 0},
	};
	const char *path = SP_DEFAULT_CONFIG;
	static struct sp_conf cfg;
	static struct sp_eal_args eal;
	struct sp_dp *dp = NULL;
	struct sp_ctl ctl;
	char err[512] = "";
	bool check = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'r':
			return print_reference();
		case 'v':
			printf("shortpathd %s\n", SP_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	rc = sp_config_load(path, &cfg, err, sizeof(err));
	if (rc == 0)
		rc = build_eal_args(&cfg, &eal, err, sizeof(err));
	if (rc == 0 && check) /* as start-up reads it (sp_locator_create), keeping nothing */
		rc = sp_nodeauth_check(cfg.node_keys, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		printf("config: %s: OK (%u ports, %u workers)\n", path, cfg.n_ports, cfg.n_workers);
		return 0;
	}

	if (rte_eal_init(eal.argc, eal.argv) < 0) {
		fprintf(stderr, "eal: initialisation failed: %s (see the EAL lines above)\n",
			rte_strerror(rte_errno));
		return 1;
	}
	sp_log_init();
	rte_log_set_level(sp_logtype, (uint32_t)cfg.log_level);
	SP_LOG(NOTICE, "shortpathd %s starting, config %s", SP_VERSION, path);
	if (rte_pdump_init() != 0)
		SP_LOG(WARNING, "pdump unavailable: %s (dpdk-dumpcap will not attach)",
		       rte_strerror(rte_errno));

	memset(&ctl, 0, sizeof(ctl));
	rc = sp_dp_create(&cfg, &dp, err, sizeof(err));
	if (rc == 0)
		rc = sp_ctl_create(&ctl, &cfg, dp, err, sizeof(err));
	if (rc == 0)
		rc = sp_dp_start(dp, err, sizeof(err));
	if (rc == 0) {
		SP_LOG(NOTICE, "running: %u ports, %u workers, telemetry %s, api %s", dp->n_ports,
		       dp->n_workers, cfg.telemetry ? "on" : "off", cfg.api_listen);
		rc = sp_ctl_run(&ctl);
	} else {
		fprintf(stderr, "%s\n", err); /* one plain line, like the config checks */
	}
	sp_telemetry_unregister();
	sp_ctl_stop(&ctl); /* no more locator calls into the dataplane freed next */
	sp_dp_destroy(dp); /* stops the workers first */
	sp_ctl_destroy(&ctl);
	rte_pdump_uninit();
	SP_LOG(NOTICE, "stopped");
	rte_eal_cleanup();
	return rc == 0 ? 0 : 1;
}
