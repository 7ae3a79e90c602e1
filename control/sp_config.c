/* Loading shortpathd's INI file with rte_cfgfile into a validated struct sp_conf. */
#include "sp_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cfgfile.h>

static int
load_section(struct rte_cfgfile *cf, const char *section, struct sp_conf *cfg, char *err,
	     size_t errlen)
{
	struct rte_cfgfile_entry *entries;
	int n, i, j, rc = 0;

	n = rte_cfgfile_section_num_entries(cf, section);
	if (n < 0) {
		snprintf(err, errlen, "config: [%s]: cannot read section", section);
		return -EINVAL;
	}
	entries = calloc(n > 0 ? (size_t)n : 1, sizeof(*entries));
	if (entries == NULL) {
		snprintf(err, errlen, "config: out of memory");
		return -ENOMEM;
	}
	if (rte_cfgfile_section_entries(cf, section, entries, n) != n) {
		snprintf(err, errlen, "config: [%s]: cannot read entries", section);
		free(entries);
		return -EINVAL;
	}
	for (i = 0; i < n && rc == 0; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(entries[i].name, entries[j].name) == 0) {
				snprintf(err, errlen, "config: [%s] %s: set twice", section,
					 entries[i].name);
				rc = -EINVAL;
				break;
			}
		}
		if (rc == 0)
			rc = sp_conf_set(cfg, section, entries[i].name, entries[i].value, err,
					 errlen);
	}
	/* A port section with no keys still has to exist (and then fails "device required"). */
	if (rc == 0 && n == 0 && strncmp(section, "port.", 5) == 0)
		rc = sp_conf_set(cfg, section, "promiscuous", "true", err, errlen);
	free(entries);
	return rc;
}

/*
 * rte_cfgfile skips lines it cannot parse; a typo must not vanish silently, so every line is
 * checked first: blank, '# comment', '[section]', or 'key = value' inside a section.
 */
static int
syntax_check(const char *path, char *err, size_t errlen)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	bool in_section = false;
	unsigned int no = 0;
	int rc = 0;

	if (f == NULL) {
		snprintf(err, errlen, "config: %s: %s", path, strerror(errno));
		return -errno;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		char *s = line, *e, *hash;

		no++;
		{
			const char *eq = strchr(line, '=');
			size_t vlen = eq ? strcspn(eq + 1, "#\n") : 0;

			/* rte_cfgfile would silently cut longer names and values */
			if (eq != NULL && line[0] != '#' &&
			    ((size_t)(eq - line) >= CFG_NAME_LEN || vlen >= CFG_VALUE_LEN)) {
				snprintf(err, errlen,
					 "config: %s:%u: name or value longer than %d/%d "
					 "characters",
					 path, no, CFG_NAME_LEN - 1, CFG_VALUE_LEN - 1);
				rc = -EINVAL;
				break;
			}
		}
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "config: %s:%u: line longer than %zu characters",
				 path, no, sizeof(line) - 2);
			rc = -EINVAL;
			break;
		}
		hash = strchr(s, '#');
		if (hash != NULL)
			*hash = '\0';
		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*s == '\0')
			continue;
		if (*s == '[') {
			if (e[-1] != ']' || e - s < 3) {
				snprintf(err, errlen,
					 "config: %s:%u: '%s' is not a [section] header", path, no,
					 s);
				rc = -EINVAL;
			}
			in_section = true;
			continue;
		}
		if (strchr(s, '=') == NULL || *s == '=') {
			snprintf(err, errlen, "config: %s:%u: '%s' is not 'key = value'", path, no,
				 s);
			rc = -EINVAL;
		} else if (!in_section) {
			snprintf(err, errlen, "config: %s:%u: '%s' is outside any [section]", path,
				 no, s);
			rc = -EINVAL;
		}
	}
	fclose(f);
	return rc;
}

int
sp_config_load(const char *path, struct sp_conf *cfg, char *err, size_t errlen)
{
	struct rte_cfgfile *cf;
	char **names = NULL;
	int n, i, j, rc = 0;

	sp_conf_defaults(cfg);
	if (access(path, R_OK) != 0) {
		snprintf(err, errlen, "config: %s: %s", path, strerror(errno));
		return -errno;
	}
	rc = syntax_check(path, err, errlen);
	if (rc != 0)
		return rc;
	{
		struct rte_cfgfile_parameters params = {.comment_character = '#'};

		/* "key =" is a value: the empty string (e.g. mac = : learn) */
		cf = rte_cfgfile_load_with_params(path, CFG_FLAG_EMPTY_VALUES, &params);
	}
	if (cf == NULL) {
		snprintf(err, errlen,
			 "config: %s: not a valid INI file (a line outside 'key = value' or "
			 "'[section]', or a name/value longer than %d/%d characters)",
			 path, CFG_NAME_LEN - 1, CFG_VALUE_LEN - 1);
		return -EINVAL;
	}
	n = rte_cfgfile_num_sections(cf, NULL, 0);
	if (n > 0) {
		names = calloc((size_t)n, sizeof(*names));
		for (i = 0; names != NULL && i < n; i++) {
			names[i] = malloc(CFG_NAME_LEN);
			if (names[i] == NULL)
				break;
		}
		if (names == NULL || i < n) {
			snprintf(err, errlen, "config: out of memory");
			rc = -ENOMEM;
			n = names == NULL ? 0 : i;
			goto out;
		}
		rte_cfgfile_sections(cf, names, n);
	}
	for (i = 0; i < n && rc == 0; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(names[i], names[j]) == 0) {
				snprintf(err, errlen, "config: [%s]: section appears twice",
					 names[i]);
				rc = -EINVAL;
				goto out;
			}
		}
		rc = load_section(cf, names[i], cfg, err, errlen);
	}
	if (rc == 0)
		rc = sp_conf_finish(cfg, err, errlen);
out:
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	rte_cfgfile_close(cf);
	return rc;
}
