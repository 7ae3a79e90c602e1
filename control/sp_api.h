/* Management HTTP API on a kernel socket: /v1/health, /v1/stats (JSON), /metrics (Prometheus). */
#ifndef SP_API_H
#define SP_API_H

#include <stddef.h>

struct sp_ctl;
struct sp_api;

int sp_api_create(struct sp_ctl *ctl, const char *listen, struct sp_api **out, char *err,
		  size_t errlen);
void sp_api_destroy(struct sp_api *api);

#endif /* SP_API_H */
