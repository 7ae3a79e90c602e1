/* Loading shortpathd's INI file with rte_cfgfile into a validated struct sp_conf. */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stddef.h>

#include "sp_conf.h"

/*
 * Load and validate path. Needs no EAL. Returns 0, or a negative errno with a one-line
 * message ("config: [section] key: reason" or "config: FILE: ...") in err.
 */
int sp_config_load(const char *path, struct sp_conf *cfg, char *err, size_t errlen);

#endif /* SP_CONFIG_H */
