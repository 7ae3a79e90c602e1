/* Logging macros over DPDK's rte_log with shortpath's own log type. */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <inttypes.h>

#include <rte_log.h>

/* The "shortpath" log type id, registered once at start-up (sp_log.c). */
extern int sp_logtype;

int sp_log_init(void);

#define SP_LOG(level, fmt, ...)                                                                    \
	rte_log(RTE_LOG_##level, sp_logtype, "shortpath: " fmt "\n", ##__VA_ARGS__)

#endif /* SP_LOG_H */
