/* shortpath's rte_log type, registered once before anything logs. */
#include "sp_log.h"

int sp_logtype = RTE_LOGTYPE_USER1;

int
sp_log_init(void)
{
	int t = rte_log_register_type_and_pick_level("shortpath", RTE_LOG_INFO);

	if (t < 0)
		return t;
	sp_logtype = t;
	return 0;
}
