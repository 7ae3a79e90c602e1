/* shortpathd configuration: the typed config structure and the one table of every key (no DPDK). */
#ifndef SP_CONF_H
#define SP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_CONF_MAX_PORTS 32
#define SP_CONF_MAX_WORKERS 64
#define SP_CONF_NAME_LEN 32
#define SP_CONF_STR_LEN 256
#define SP_CONF_ERR_LEN 256

enum sp_port_role {
	SP_PORT_ROLE_VM = 0,
	SP_PORT_ROLE_UPLINK,
};

struct sp_conf_port {
	char name[SP_CONF_NAME_LEN]; /* NAME of [port.NAME] */
	char device[SP_CONF_STR_LEN];
	int64_t role; /* enum sp_port_role */
	int64_t queues;
	int64_t rx_desc;
	int64_t tx_desc;
	int64_t mtu;
	bool promiscuous;
	bool has_mac;
	uint8_t mac[6];
};

struct sp_conf {
	/* [eal] */
	char file_prefix[SP_CONF_NAME_LEN];
	int64_t memory_mb;
	bool no_huge;
	bool no_pci;
	bool telemetry;
	char eal_extra[SP_CONF_STR_LEN];
	/* [lcores] */
	int64_t main_lcore;
	char workers[SP_CONF_STR_LEN];
	unsigned int worker_lcores[SP_CONF_MAX_WORKERS];
	unsigned int n_workers;
	/* [port.NAME] */
	struct sp_conf_port ports[SP_CONF_MAX_PORTS];
	unsigned int n_ports;
	/* [redis] */
	char redis_address[SP_CONF_STR_LEN];
	char redis_password[SP_CONF_STR_LEN];
	int64_t redis_db;
	int64_t redis_connect_timeout_ms;
	int64_t redis_command_timeout_ms;
	int64_t redis_heartbeat_ms;
	int64_t redis_reconnect_min_ms;
	int64_t redis_reconnect_max_ms;
	/* [api] */
	char api_listen[SP_CONF_STR_LEN];
	/* [dataplane] */
	int64_t burst;
	int64_t mbufs;
	int64_t mbuf_cache;
	int64_t mbuf_size;
	int64_t mac_table_size;
	int64_t mac_learn_limit;
	int64_t mac_age_s;
	int64_t punt_ring_size;
	int64_t punt_poll_us;
	int64_t max_flows;	      /* per worker */
	int64_t flow_buffer;	      /* bytes of request held per flow before it is bound */
	int64_t flow_buffers;	      /* request buffers per worker */
	int64_t syn_retries;	      /* backend SYNs before the next target */
	int64_t syn_timeout_ms;	      /* first backend SYN retransmission */
	int64_t rto_ms;		      /* retransmission of data shortpath sent */
	int64_t idle_timeout_s;	      /* a spliced flow with no packet this long is reset */
	int64_t half_close_timeout_s; /* one side closed, the other silent this long: reset */
	int64_t loc_cache;	      /* locator cache entries per worker */
	int64_t syncookie_period_s;   /* the cookie time counter's period */
	/* [locators] */
	int64_t loc_ttl_s;
	int64_t loc_timeout_ms;
	int64_t loc_max_inflight;
	int64_t loc_prefetch_next;
	int64_t loc_prefetch_listing;
	/* [auth] */
	int64_t auth_verdict_ttl_s;
	int64_t auth_verdicts;
	int64_t auth_timeout_ms;
	int64_t auth_max_pending;
	/* [cache] */
	int64_t cache_size_kb;
	int64_t cache_max_object_kb;
	int64_t cache_entries;
	int64_t cache_fills;
	int64_t cache_admission; /* 0: all, 1: second-hit */
	int64_t cache_fill_timeout_ms;
	int64_t cache_coalesce_wait_ms;
	int64_t cache_revalidate_timeout_ms;
	/* [keys] */
	char node_keys[SP_CONF_STR_LEN];
	/* [log] */
	int64_t log_level; /* 1 (emerg) .. 8 (debug), DPDK's numbering */
};

enum sp_conf_type {
	SP_CONF_INT,
	SP_CONF_BOOL,
	SP_CONF_STR,
	SP_CONF_ENUM,
	SP_CONF_MAC,
	SP_CONF_HOSTPORT, /* host:port, [v6]:port, or unix:/path */
	SP_CONF_ADDRPORT, /* host:port or [v6]:port (no unix socket) */
	SP_CONF_CPULIST,  /* "1", "1-3", "1,3-4" */
};

struct sp_conf_key {
	const char *section; /* "eal", "port.*" ... */
	const char *key;
	enum sp_conf_type type;
	const char *def;     /* default as text; NULL = required */
	int64_t min, max;    /* SP_CONF_INT range; SP_CONF_STR max length */
	const char *choices; /* SP_CONF_ENUM: "a|b|c" (value = index) */
	bool pow2;	     /* SP_CONF_INT: must be a power of two */
	size_t offset;	     /* into struct sp_conf, or struct sp_conf_port for "port.*" */
	size_t has_offset;   /* SP_CONF_MAC: offset of the bool saying it was set */
	const char *help;
};

/* The table of every key, terminated by an entry with section == NULL. */
extern const struct sp_conf_key sp_conf_keys[];

/* Fill every key of cfg (and of ports) with its default. */
void sp_conf_defaults(struct sp_conf *cfg);

/*
 * Apply one "key = value" of section (e.g. "port.vm0"). Creates the port for a new port
 * section. Returns 0, or -EINVAL/-ENOENT/-ENOSPC with "config: [section] key: reason" in err.
 */
int sp_conf_set(struct sp_conf *cfg, const char *section, const char *key, const char *value,
		char *err, size_t errlen);

/* Checks across keys (roles, lcores, required keys). 0 or -EINVAL with the message in err. */
int sp_conf_finish(struct sp_conf *cfg, char *err, size_t errlen);

/*
 * A numeric address:port ("a.b.c.d:port" or "[v6]:port", port 1..65535, no unix socket), as
 * [section] keys of type ADDRPORT take it. 0, or -EINVAL with the reason in *why.
 */
int sp_conf_check_addrport(const char *v, const char **why);

/* The value of hex digit c (either case), or -1. */
int sp_conf_hexval(int c);

/* Parse "1,3-5" into lcore ids. Returns the count, or -EINVAL. */
int sp_conf_parse_cpulist(const char *s, unsigned int *out, unsigned int max);

/* Write the config reference (markdown table) to buf; returns bytes needed like snprintf. */
int sp_conf_reference(char *buf, size_t len);

/*
 * The ethdev name DPDK gives a port's device string: a PCI address normalised to
 * dddd:bb:dd.f in lower case (is_pci true), else the text before the first comma.
 */
void sp_conf_device_name(const char *device, char *name, size_t len, bool *is_pci);

#endif /* SP_CONF_H */
