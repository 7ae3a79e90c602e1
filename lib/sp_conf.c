/* shortpathd configuration: the key table, value parsing, defaults and cross-key checks. */
#include "sp_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG(f) offsetof(struct sp_conf, f)
#define PORT(f) offsetof(struct sp_conf_port, f)
#define NOLIM 0, 0

/* Every key shortpathd reads, once. The parser, --check and --reference all use this table. */
const struct sp_conf_key sp_conf_keys[] = {
	{"eal", "file_prefix", SP_CONF_STR, "shortpath", 1, SP_CONF_NAME_LEN - 1, NULL, false,
	 CFG(file_prefix), 0,
	 "EAL --file-prefix: runtime directory /var/run/dpdk/PREFIX (telemetry socket, pdump)"},
	{"eal", "memory_mb", SP_CONF_INT, "0", 0, 1048576, NULL, false, CFG(memory_mb), 0,
	 "EAL -m: memory to preallocate in MB (0 = EAL default; required with no_huge)"},
	{"eal", "no_huge", SP_CONF_BOOL, "false", NOLIM, NULL, false, CFG(no_huge), 0,
	 "EAL --no-huge: use anonymous memory instead of hugepages (labs, CI)"},
	{"eal", "no_pci", SP_CONF_BOOL, "false", NOLIM, NULL, false, CFG(no_pci), 0,
	 "EAL --no-pci: do not probe PCI devices (virtual ports only)"},
	{"eal", "telemetry", SP_CONF_BOOL, "true", NOLIM, NULL, false, CFG(telemetry), 0,
	 "serve the DPDK telemetry socket (dpdk-telemetry.py, /shortpath/... commands)"},
	{"eal", "extra_args", SP_CONF_STR, "", 0, SP_CONF_STR_LEN - 1, NULL, false, CFG(eal_extra),
	 0,
	 "further EAL arguments, space separated (not -l/-c/--lcores/--main-lcore/--file-prefix/"
	 "--vdev: those come from other keys)"},
	{"lcores", "main", SP_CONF_INT, "0", 0, 1023, NULL, false, CFG(main_lcore), 0,
	 "lcore of the control thread (libevent loop, Redis, API)"},
	{"lcores", "workers", SP_CONF_CPULIST, "1", NOLIM, NULL, false, CFG(workers), 0,
	 "worker lcores (fast path), e.g. 1 or 2-5 or 2,4; each polls its own queue of every port"},
	{"port.*", "device", SP_CONF_STR, NULL, 1, SP_CONF_STR_LEN - 1, NULL, false, PORT(device),
	 0,
	 "a PCI address (0000:01:00.0) or a DPDK virtual device with its arguments "
	 "(net_vhost0,iface=/run/sp/vm0.sock)"},
	{"port.*", "role", SP_CONF_ENUM, NULL, NOLIM, "vm|uplink", false, PORT(role), 0,
	 "vm: one VM's vNIC (the port is the VM's identity); uplink: toward the fabric (exactly "
	 "one)"},
	{"port.*", "queues", SP_CONF_INT, "0", 0, 64, NULL, false, PORT(queues), 0,
	 "rx/tx queue pairs (0 = one per worker); tx queues must be >= workers"},
	{"port.*", "rx_desc", SP_CONF_INT, "1024", 64, 16384, NULL, true, PORT(rx_desc), 0,
	 "rx ring size (descriptors)"},
	{"port.*", "tx_desc", SP_CONF_INT, "1024", 64, 16384, NULL, true, PORT(tx_desc), 0,
	 "tx ring size (descriptors)"},
	{"port.*", "mtu", SP_CONF_INT, "1500", 68, 9600, NULL, false, PORT(mtu), 0,
	 "largest IP packet forwarded; frames above one mbuf are received scattered"},
	{"port.*", "promiscuous", SP_CONF_BOOL, "true", NOLIM, NULL, false, PORT(promiscuous), 0,
	 "receive every frame (needed for a bump in the wire)"},
	{"port.*", "mac", SP_CONF_MAC, "", NOLIM, NULL, false, PORT(mac), PORT(has_mac),
	 "vm ports: the VM's MAC, a static entry (learning stays on for other MACs); "
	 "empty = learn from the VM's traffic"},
	{"redis", "address", SP_CONF_HOSTPORT, "127.0.0.1:6379", NOLIM, NULL, false,
	 CFG(redis_address), 0, "Redis server: host:port or unix:/path/to/redis.sock"},
	{"redis", "password", SP_CONF_STR, "", 0, SP_CONF_STR_LEN - 1, NULL, false,
	 CFG(redis_password), 0, "AUTH password (empty = none)"},
	{"redis", "db", SP_CONF_INT, "0", 0, 1023, NULL, false, CFG(redis_db), 0,
	 "database number (SELECT)"},
	{"redis", "connect_timeout_ms", SP_CONF_INT, "1000", 10, 60000, NULL, false,
	 CFG(redis_connect_timeout_ms), 0, "give up a connection attempt after this long"},
	{"redis", "command_timeout_ms", SP_CONF_INT, "1000", 10, 60000, NULL, false,
	 CFG(redis_command_timeout_ms), 0,
	 "a command unanswered this long drops the connection (then reconnect)"},
	{"redis", "heartbeat_ms", SP_CONF_INT, "1000", 100, 60000, NULL, false,
	 CFG(redis_heartbeat_ms), 0,
	 "refresh sp:node:{host}:alive (TTL 3x); an unanswered one drops the connection"},
	{"redis", "reconnect_min_ms", SP_CONF_INT, "100", 10, 60000, NULL, false,
	 CFG(redis_reconnect_min_ms), 0, "first reconnect delay; doubles per failure, with jitter"},
	{"redis", "reconnect_max_ms", SP_CONF_INT, "5000", 10, 600000, NULL, false,
	 CFG(redis_reconnect_max_ms), 0, "cap of the reconnect delay"},
	{"api", "listen", SP_CONF_ADDRPORT, "127.0.0.1:9180", NOLIM, NULL, false, CFG(api_listen),
	 0, "management HTTP API (/v1/..., /metrics): address:port (IPv4 or [IPv6])"},
	{"dataplane", "burst", SP_CONF_INT, "32", 4, 512, NULL, false, CFG(burst), 0,
	 "packets per rx burst"},
	{"dataplane", "mbufs", SP_CONF_INT, "16383", 1023, 16777215, NULL, false, CFG(mbufs), 0,
	 "mbufs in the packet pool (best as 2^n - 1)"},
	{"dataplane", "mbuf_cache", SP_CONF_INT, "256", 0, 512, NULL, false, CFG(mbuf_cache), 0,
	 "per-lcore mempool cache"},
	{"dataplane", "mbuf_size", SP_CONF_INT, "2176", 1152, 65535, NULL, false, CFG(mbuf_size), 0,
	 "mbuf data room incl. 128 B headroom; larger frames are chained"},
	{"dataplane", "mac_table_size", SP_CONF_INT, "4096", 64, 1048576, NULL, false,
	 CFG(mac_table_size), 0, "MAC → VM port entries (static + learned)"},
	{"dataplane", "mac_learn_limit", SP_CONF_INT, "8", 0, 4096, NULL, false,
	 CFG(mac_learn_limit), 0, "learned MACs per VM port (0 = no learning)"},
	{"dataplane", "mac_age_s", SP_CONF_INT, "300", 5, 86400, NULL, false, CFG(mac_age_s), 0,
	 "a learned MAC not seen for this long is forgotten"},
	{"dataplane", "punt_ring_size", SP_CONF_INT, "4096", 64, 1048576, NULL, true,
	 CFG(punt_ring_size), 0, "worker → control ring entries"},
	{"dataplane", "punt_poll_us", SP_CONF_INT, "500", 50, 100000, NULL, false,
	 CFG(punt_poll_us), 0, "how often the control thread drains the punt ring"},
	{"dataplane", "max_flows", SP_CONF_INT, "16384", 64, 4194304, NULL, true, CFG(max_flows), 0,
	 "TCP flows of enhanced services per worker (power of two)"},
	{"dataplane", "flow_buffer", SP_CONF_INT, "16384", 2048, 65536, NULL, false,
	 CFG(flow_buffer), 0,
	 "request bytes held per flow until it is bound (the largest request head it can parse)"},
	{"dataplane", "flow_buffers", SP_CONF_INT, "512", 16, 1048576, NULL, false,
	 CFG(flow_buffers), 0, "request buffers per worker (flows that are not bound yet)"},
	{"dataplane", "syn_retries", SP_CONF_INT, "3", 1, 10, NULL, false, CFG(syn_retries), 0,
	 "SYNs sent to a storage node or the VIP before the next target is tried"},
	{"dataplane", "syn_timeout_ms", SP_CONF_INT, "300", 10, 10000, NULL, false,
	 CFG(syn_timeout_ms), 0, "first backend SYN retransmission (doubles per retry)"},
	{"dataplane", "rto_ms", SP_CONF_INT, "200", 10, 10000, NULL, false, CFG(rto_ms), 0,
	 "retransmission timeout of data shortpath sends (doubles per retry, 6 retries)"},
	{"dataplane", "idle_timeout_s", SP_CONF_INT, "300", 1, 86400, NULL, false,
	 CFG(idle_timeout_s), 0, "a flow with no packet this long is reset both ways"},
	{"dataplane", "half_close_timeout_s", SP_CONF_INT, "60", 1, 86400, NULL, false,
	 CFG(half_close_timeout_s), 0, "after one side's FIN, the flow is reset if idle this long"},
	{"dataplane", "loc_cache", SP_CONF_INT, "4096", 64, 1048576, NULL, true, CFG(loc_cache), 0,
	 "locator cache entries per worker (power of two)"},
	{"dataplane", "syncookie_period_s", SP_CONF_INT, "64", 1, 64, NULL, false,
	 CFG(syncookie_period_s), 0,
	 "SYN cookie time counter period: a cookie is accepted for 1 to 2 periods (Linux: 64)"},
	{"locators", "ttl_s", SP_CONF_INT, "60", 1, 600, NULL, false, CFG(loc_ttl_s), 0,
	 "how long a locator is used (in Redis and the workers) before it is resolved again"},
	{"locators", "timeout_ms", SP_CONF_INT, "1000", 50, 30000, NULL, false, CFG(loc_timeout_ms),
	 0,
	 "a storage manager call unanswered this long fails (the request takes the ordinary path)"},
	{"locators", "max_inflight", SP_CONF_INT, "256", 1, 65536, NULL, false,
	 CFG(loc_max_inflight), 0, "storage manager calls at once; more are answered as failed"},
	{"locators", "prefetch_next", SP_CONF_INT, "2", 0, 64, NULL, false, CFG(loc_prefetch_next),
	 0, "after a key ending in a number, prefetch this many following numbers"},
	{"locators", "prefetch_listing", SP_CONF_INT, "100", 0, 1000, NULL, false,
	 CFG(loc_prefetch_listing), 0, "keys of a listing whose locators are prefetched"},
	{"auth", "verdict_ttl_s", SP_CONF_INT, "300", 1, 86400, NULL, false,
	 CFG(auth_verdict_ttl_s), 0,
	 "auth = first: how long a verified (VM port, access key) is trusted without a check"},
	{"auth", "verdicts", SP_CONF_INT, "4096", 64, 1048576, NULL, true, CFG(auth_verdicts), 0,
	 "verdicts kept per worker (power of two)"},
	{"auth", "timeout_ms", SP_CONF_INT, "1000", 10, 30000, NULL, false, CFG(auth_timeout_ms), 0,
	 "a verification unanswered this long: the request takes the ordinary path"},
	{"auth", "max_pending", SP_CONF_INT, "255", 15, 65535, NULL, false, CFG(auth_max_pending),
	 0, "verifications in flight at once (messages of [dataplane] flow_buffer bytes each)"},
	{"cache", "size_kb", SP_CONF_INT, "65536", 0, 67108864, NULL, false, CFG(cache_size_kb), 0,
	 "the object cache's byte budget (bodies, heads and names), in KiB; 0 = no cache"},
	{"cache", "max_object_kb", SP_CONF_INT, "1024", 1, 1048576, NULL, false,
	 CFG(cache_max_object_kb), 0,
	 "largest body cached, in KiB (a worker copies a fill into a buffer this big)"},
	{"cache", "entries", SP_CONF_INT, "65536", 64, 16777216, NULL, true, CFG(cache_entries), 0,
	 "objects the cache index holds at most (power of two)"},
	{"cache", "fills", SP_CONF_INT, "8", 1, 1024, NULL, false, CFG(cache_fills), 0,
	 "fills in flight per worker (buffers of max_object_kb + the response head)"},
	{"cache", "admission", SP_CONF_ENUM, "second-hit", NOLIM, "all|second-hit", false,
	 CFG(cache_admission), 0,
	 "when the budget is full, admit an object on its first fill (all) or only on a fill "
	 "seen before (second-hit), so one-hit objects do not flush hot ones"},
	{"cache", "fill_timeout_ms", SP_CONF_INT, "5000", 100, 600000, NULL, false,
	 CFG(cache_fill_timeout_ms), 0,
	 "a fill not finished in this long is abandoned (and another request may start one)"},
	{"cache", "coalesce_wait_ms", SP_CONF_INT, "100", 0, 10000, NULL, false,
	 CFG(cache_coalesce_wait_ms), 0,
	 "a miss of an object whose fill is in flight waits this long for it (then fetches the "
	 "object itself); 0 = never wait"},
	{"cache", "revalidate_timeout_ms", SP_CONF_INT, "2000", 50, 60000, NULL, false,
	 CFG(cache_revalidate_timeout_ms), 0,
	 "policy verify: a revalidation unanswered this long failed (stale-if-error applies)"},
	{"keys", "node_keys", SP_CONF_STR, "", 0, SP_CONF_STR_LEN - 1, NULL, false, CFG(node_keys),
	 0,
	 "file of `key_id secret_hex` lines (or one bare secret) for the node-manager credential; "
	 "mode 0600 or stricter; empty = nothing can go direct"},
	{"log", "level", SP_CONF_ENUM, "info", NOLIM,
	 "none|emerg|alert|crit|err|warning|notice|info|debug", false, CFG(log_level), 0,
	 "log level of shortpath and DPDK"},
	{NULL, NULL, 0, NULL, NOLIM, NULL, false, 0, 0, NULL},
};

static int
conf_err(char *err, size_t errlen, const char *section, const char *key, const char *fmt, ...)
{
	char msg[SP_CONF_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key != NULL)
		snprintf(err, errlen, "config: [%s] %s: %s", section, key, msg);
	else
		snprintf(err, errlen, "config: [%s]: %s", section, msg);
	return -EINVAL;
}

static bool
section_matches(const char *pattern, const char *section)
{
	size_t n = strlen(pattern);

	if (n > 0 && pattern[n - 1] == '*')
		return strncmp(pattern, section, n - 1) == 0 && section[n - 1] != '\0';
	return strcmp(pattern, section) == 0;
}

static int
parse_int(const char *v, int64_t *out)
{
	char *end;
	long long x;

	if (*v == '\0')
		return -EINVAL;
	errno = 0;
	x = strtoll(v, &end, 10); /* decimal only: 0100 is one hundred, not octal */
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*out = x;
	return 0;
}

static int
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int
parse_enum(const char *choices, const char *v, int64_t *out)
{
	const char *c = choices;
	int64_t idx = 0;
	size_t n = strlen(v);

	while (*c != '\0') {
		const char *bar = strchr(c, '|');
		size_t len = bar ? (size_t)(bar - c) : strlen(c);

		if (len == n && strncasecmp(c, v, n) == 0) {
			*out = idx;
			return 0;
		}
		idx++;
		c += len + (bar ? 1 : 0);
	}
	return -EINVAL;
}

int
sp_conf_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly aa:bb:cc:dd:ee:ff (hex digits, either case). */
static int
parse_mac(const char *v, uint8_t mac[6])
{
	int i, hi, lo;

	if (strlen(v) != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		hi = sp_conf_hexval((unsigned char)v[i * 3]);
		lo = sp_conf_hexval((unsigned char)v[i * 3 + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && v[i * 3 + 2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_hostport(const char *v, const char **why);

int
sp_conf_check_addrport(const char *v, const char **why)
{
	if (strncmp(v, "unix:", 5) == 0) {
		*why = "address:port only (no unix socket)";
		return -EINVAL;
	}
	return parse_hostport(v, why);
}

static int
parse_hostport(const char *v, const char **why)
{
	const char *colon;
	int64_t port;

	if (strncmp(v, "unix:", 5) == 0) {
		if (v[5] != '/') {
			*why = "unix socket path must be absolute (unix:/path)";
			return -EINVAL;
		}
		return 0;
	}
	colon = strrchr(v, ':');
	if (colon == NULL || colon == v) {
		*why = "expected host:port, [ipv6]:port or unix:/path";
		return -EINVAL;
	}
	if (v[0] == '[' && colon[-1] != ']') {
		*why = "IPv6 address must be in brackets: [addr]:port";
		return -EINVAL;
	}
	if (parse_int(colon + 1, &port) != 0 || port < 1 || port > 65535) {
		*why = "port must be 1..65535";
		return -EINVAL;
	}
	{
		char host[64];
		unsigned char bin[sizeof(struct in6_addr)];
		bool v6 = v[0] == '[';
		size_t hl = (size_t)(colon - v) - (v6 ? 2 : 0);

		snprintf(host, sizeof(host), "%.*s", (int)hl, v + (v6 ? 1 : 0));
		if (hl >= sizeof(host) || inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1) {
			*why = "the host must be a numeric IPv4 or [IPv6] address (no DNS lookups "
			       "on the control thread)";
			return -EINVAL;
		}
	}
	return 0;
}

int
sp_conf_parse_cpulist(const char *s, unsigned int *out, unsigned int max)
{
	unsigned int n = 0;
	const char *p = s;

	while (*p != '\0') {
		char *end;
		unsigned long a, b;

		while (*p == ' ')
			p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		a = strtoul(p, &end, 10);
		b = a;
		p = end;
		if (*p == '-') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			b = strtoul(p, &end, 10);
			p = end;
		}
		while (*p == ' ')
			p++;
		if (b < a || b > 1023)
			return -EINVAL;
		for (; a <= b; a++) {
			unsigned int i;

			for (i = 0; i < n; i++)
				if (out[i] == a)
					return -EINVAL;
			if (n == max)
				return -ENOSPC;
			out[n++] = (unsigned int)a;
		}
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -EINVAL;
	}
	return n == 0 ? -EINVAL : (int)n;
}

/* Store one value at its field; on error fill err naming section and key. */
static int
conf_store(const struct sp_conf_key *k, void *base, const char *section, const char *value,
	   char *err, size_t errlen)
{
	char *field = (char *)base + k->offset;
	const char *why = NULL;
	int64_t iv;
	bool bv;

	switch (k->type) {
	case SP_CONF_INT:
		if (parse_int(value, &iv) != 0)
			return conf_err(err, errlen, section, k->key, "'%s' is not an integer",
					value);
		if (iv < k->min || iv > k->max)
			return conf_err(err, errlen, section, k->key,
					"%" PRId64 " is out of range %" PRId64 "..%" PRId64, iv,
					k->min, k->max);
		if (k->pow2 && (iv & (iv - 1)) != 0)
			return conf_err(err, errlen, section, k->key,
					"%" PRId64 " is not a power of two", iv);
		memcpy(field, &iv, sizeof(iv));
		return 0;
	case SP_CONF_BOOL:
		if (parse_bool(value, &bv) != 0)
			return conf_err(err, errlen, section, k->key,
					"'%s' is not a boolean (true/false/yes/no/on/off/1/0)",
					value);
		memcpy(field, &bv, sizeof(bv));
		return 0;
	case SP_CONF_ENUM:
		if (parse_enum(k->choices, value, &iv) != 0)
			return conf_err(err, errlen, section, k->key, "'%s' is not one of %s",
					value, k->choices);
		memcpy(field, &iv, sizeof(iv));
		return 0;
	case SP_CONF_MAC:
		bv = value[0] != '\0';
		if (bv && parse_mac(value, (uint8_t *)field) != 0)
			return conf_err(err, errlen, section, k->key,
					"'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", value);
		if (bv && ((uint8_t *)field)[0] & 1)
			return conf_err(err, errlen, section, k->key, "%s is a multicast address",
					value);
		memcpy((char *)base + k->has_offset, &bv, sizeof(bv));
		return 0;
	case SP_CONF_ADDRPORT:
	case SP_CONF_HOSTPORT:
		if ((k->type == SP_CONF_ADDRPORT ? sp_conf_check_addrport(value, &why)
						 : parse_hostport(value, &why)) != 0)
			return conf_err(err, errlen, section, k->key, "'%s': %s", value, why);
		/* fall through: stored as a string */
		__attribute__((fallthrough));
	case SP_CONF_STR:
		if ((int64_t)strlen(value) > (k->max ? k->max : SP_CONF_STR_LEN - 1))
			return conf_err(err, errlen, section, k->key,
					"longer than %" PRId64 " characters",
					k->max ? k->max : SP_CONF_STR_LEN - 1);
		if (k->min > 0 && (int64_t)strlen(value) < k->min)
			return conf_err(err, errlen, section, k->key, "must not be empty");
		snprintf(field, SP_CONF_STR_LEN, "%s", value);
		return 0;
	case SP_CONF_CPULIST: {
		unsigned int ids[SP_CONF_MAX_WORKERS];

		if (sp_conf_parse_cpulist(value, ids, SP_CONF_MAX_WORKERS) < 0)
			return conf_err(err, errlen, section, k->key,
					"'%s' is not a list of distinct lcores (e.g. 1 or 1-3,5)",
					value);
		snprintf(field, SP_CONF_STR_LEN, "%s", value);
		return 0;
	}
	}
	return conf_err(err, errlen, section, k->key, "internal: unknown key type");
}

static void
defaults_for(const char *pattern, void *base)
{
	const struct sp_conf_key *k;
	char err[SP_CONF_ERR_LEN];

	for (k = sp_conf_keys; k->section != NULL; k++)
		if (strcmp(k->section, pattern) == 0 && k->def != NULL)
			(void)conf_store(k, base, k->section, k->def, err, sizeof(err));
}

void
sp_conf_defaults(struct sp_conf *cfg)
{
	const struct sp_conf_key *k;
	char err[SP_CONF_ERR_LEN];

	/* every key of every section but the per-port ones (sp_conf_set fills a new port) */
	memset(cfg, 0, sizeof(*cfg));
	for (k = sp_conf_keys; k->section != NULL; k++)
		if (strchr(k->section, '*') == NULL && k->def != NULL)
			(void)conf_store(k, cfg, k->section, k->def, err, sizeof(err));
}

static struct sp_conf_port *
port_for_section(struct sp_conf *cfg, const char *section, char *err, size_t errlen, int *rc)
{
	const char *name = section + strlen("port.");
	unsigned int i;
	struct sp_conf_port *p;

	for (i = 0; i < cfg->n_ports; i++)
		if (strcmp(cfg->ports[i].name, name) == 0)
			return &cfg->ports[i];
	if (strlen(name) >= SP_CONF_NAME_LEN) {
		*rc = conf_err(err, errlen, section, NULL, "port name longer than %d characters",
			       SP_CONF_NAME_LEN - 1);
		return NULL;
	}
	for (i = 0; name[i] != '\0'; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') {
			*rc = conf_err(err, errlen, section, NULL,
				       "port name may use letters, digits, '-' and '_' only");
			return NULL;
		}
	}
	if (cfg->n_ports == SP_CONF_MAX_PORTS) {
		*rc = conf_err(err, errlen, section, NULL, "more than %d ports", SP_CONF_MAX_PORTS);
		return NULL;
	}
	p = &cfg->ports[cfg->n_ports++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->role = -1;
	defaults_for("port.*", p);
	return p;
}

int
sp_conf_set(struct sp_conf *cfg, const char *section, const char *key, const char *value, char *err,
	    size_t errlen)
{
	const struct sp_conf_key *k;
	bool known_section = false;
	void *base = cfg;
	int rc = 0;

	for (k = sp_conf_keys; k->section != NULL; k++) {
		if (!section_matches(k->section, section))
			continue;
		known_section = true;
		if (strcmp(k->key, key) == 0)
			break;
	}
	if (!known_section)
		return conf_err(err, errlen, section, NULL,
				"unknown section (known: eal, lcores, port.NAME, redis, api, "
				"dataplane, log)");
	if (k->section == NULL)
		return conf_err(err, errlen, section, key, "unknown key");
	if (strcmp(k->section, "port.*") == 0) {
		base = port_for_section(cfg, section, err, errlen, &rc);
		if (base == NULL)
			return rc;
	}
	return conf_store(k, base, section, value, err, errlen);
}

int
sp_conf_finish(struct sp_conf *cfg, char *err, size_t errlen)
{
	unsigned int i, j, n_uplink = 0, n_vm = 0;
	char section[SP_CONF_NAME_LEN + 8];
	int n;

	n = sp_conf_parse_cpulist(cfg->workers, cfg->worker_lcores, SP_CONF_MAX_WORKERS);
	if (n < 0)
		return conf_err(err, errlen, "lcores", "workers", "'%s' is not a valid lcore list",
				cfg->workers);
	cfg->n_workers = (unsigned int)n;
	for (i = 0; i < cfg->n_workers; i++)
		if (cfg->worker_lcores[i] == (unsigned int)cfg->main_lcore)
			return conf_err(err, errlen, "lcores", "workers",
					"lcore %u is the main lcore", cfg->worker_lcores[i]);
	if (cfg->no_huge && cfg->memory_mb == 0)
		return conf_err(err, errlen, "eal", "memory_mb",
				"must be set (e.g. 512) when no_huge is true");
	for (i = 0; i < cfg->n_ports; i++) {
		struct sp_conf_port *p = &cfg->ports[i];

		snprintf(section, sizeof(section), "port.%s", p->name);
		if (p->device[0] == '\0')
			return conf_err(err, errlen, section, "device", "required key missing");
		if (p->role < 0)
			return conf_err(err, errlen, section, "role",
					"required key missing (vm or uplink)");
		if (p->queues != 0 && p->queues < (int64_t)cfg->n_workers)
			return conf_err(err, errlen, section, "queues",
					"%" PRId64 " queues for %u workers: each worker needs its "
					"own tx queue",
					p->queues, cfg->n_workers);
		if (p->role == SP_PORT_ROLE_UPLINK) {
			if (n_uplink++ > 0)
				return conf_err(err, errlen, section, "role",
						"a second uplink port: exactly one uplink port is "
						"needed");
			if (p->has_mac)
				return conf_err(err, errlen, section, "mac",
						"only vm ports take a MAC");
		} else {
			n_vm++;
		}
		for (j = 0; j < i; j++) {
			char a[SP_CONF_STR_LEN], b[SP_CONF_STR_LEN];
			bool pa, pb;

			sp_conf_device_name(p->device, a, sizeof(a), &pa);
			sp_conf_device_name(cfg->ports[j].device, b, sizeof(b), &pb);
			if (strcasecmp(a, b) == 0)
				return conf_err(err, errlen, section, "device",
						"same device (%s) as [port.%s]", a,
						cfg->ports[j].name);
			if (p->has_mac && cfg->ports[j].has_mac &&
			    memcmp(p->mac, cfg->ports[j].mac, 6) == 0)
				return conf_err(err, errlen, section, "mac",
						"same MAC as [port.%s]", cfg->ports[j].name);
		}
	}
	if (n_uplink != 1)
		return conf_err(err, errlen, "port.*", "role",
				"exactly one uplink port is needed, found %u", n_uplink);
	if (n_vm == 0)
		return conf_err(err, errlen, "port.*", "role", "at least one vm port is needed");

	if (cfg->redis_reconnect_max_ms < cfg->redis_reconnect_min_ms)
		return conf_err(err, errlen, "redis", "reconnect_max_ms",
				"smaller than reconnect_min_ms");
	if (cfg->mbuf_cache > cfg->mbufs / 2)
		return conf_err(err, errlen, "dataplane", "mbuf_cache",
				"must be at most half of mbufs");
	return 0;
}

void
sp_conf_device_name(const char *device, char *name, size_t len, bool *is_pci)
{
	unsigned int dom = 0, bus, dev, fn;
	size_t n = strcspn(device, ",");
	char head[32], tail;

	/* 0000:01:00.0 (domain:bus:dev.fn) or 01:00.0, optionally followed by ",args" */
	snprintf(head, sizeof(head), "%.*s", (int)n, device);
	*is_pci = sscanf(head, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) == 4;
	if (!*is_pci) {
		dom = 0;
		*is_pci = sscanf(head, "%2x:%2x.%1x%c", &bus, &dev, &fn, &tail) == 3;
	}
	if (*is_pci) {
		snprintf(name, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
		return;
	}
	if (n >= len)
		n = len - 1;
	memcpy(name, device, n);
	name[n] = '\0';
}

static const char *
type_name(const struct sp_conf_key *k, char *buf, size_t len)
{
	switch (k->type) {
	case SP_CONF_INT:
		snprintf(buf, len, "integer %" PRId64 "..%" PRId64 "%s", k->min, k->max,
			 k->pow2 ? ", power of 2" : "");
		return buf;
	case SP_CONF_BOOL:
		return "boolean";
	case SP_CONF_STR:
		return "string";
	case SP_CONF_ENUM:
		snprintf(buf, len, "one of `%s`", k->choices);
		return buf;
	case SP_CONF_MAC:
		return "MAC address";
	case SP_CONF_HOSTPORT:
		return "host:port / unix:/path";
	case SP_CONF_ADDRPORT:
		return "address:port";
	case SP_CONF_CPULIST:
		return "lcore list";
	}
	return "?";
}

int
sp_conf_reference(char *buf, size_t len)
{
	const struct sp_conf_key *k;
	size_t used = 0;
	char tbuf[96];
	int n;

	n = snprintf(buf, len,
		     "| section | key | type / range | default | meaning |\n"
		     "|---|---|---|---|---|\n");
	used += (size_t)n;
	for (k = sp_conf_keys; k->section != NULL; k++) {
		n = snprintf(used < len ? buf + used : NULL, used < len ? len - used : 0,
			     "| `[%s]` | `%s` | %s | %s%s%s | %s |\n",
			     strcmp(k->section, "port.*") == 0 ? "port.NAME" : k->section, k->key,
			     type_name(k, tbuf, sizeof(tbuf)), k->def ? "`" : "",
			     k->def ? (k->def[0] ? k->def : "(empty)") : "**required**",
			     k->def ? "`" : "", k->help);
		used += (size_t)n;
	}
	return (int)used;
}
