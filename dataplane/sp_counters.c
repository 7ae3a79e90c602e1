/* Name tables of the fast-path counters, generated from the X-macros in sp_counters.h. */
#include "sp_counters.h"

#define SP_NAME_ENTRY(e, s) s,

static const char *const drop_names[] = {SP_DROPS(SP_NAME_ENTRY)};
static const char *const class_names[] = {SP_CLASSES(SP_NAME_ENTRY)};
static const char *const event_names[] = {SP_EVENTS(SP_NAME_ENTRY)};

const char *
sp_drop_name(unsigned int i)
{
	return i < SP_DROP_MAX ? drop_names[i] : "unknown";
}

const char *
sp_class_name(unsigned int i)
{
	return i < SP_CLASS_MAX ? class_names[i] : "unknown";
}

const char *
sp_event_name(unsigned int i)
{
	return i < SP_EVENT_MAX ? event_names[i] : "unknown";
}
