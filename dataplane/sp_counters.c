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

void
sp_class_from_bucket(unsigned int b, uint64_t count, uint64_t *classes)
{
	static const int8_t l3_class[] = {
		-1, SP_CLASS_ARP, SP_CLASS_IPV4, SP_CLASS_IPV6, SP_CLASS_OTHER_L3, -1, -1, -1};
	static const int8_t l4_class[] = {
		-1, SP_CLASS_TCP, SP_CLASS_UDP, SP_CLASS_ICMP, SP_CLASS_ICMP, -1, -1, -1};

	if (count == 0)
		return;
	if (l3_class[b & 7] >= 0)
		classes[l3_class[b & 7]] += count;
	if (l4_class[b >> 3 & 7] >= 0)
		classes[l4_class[b >> 3 & 7]] += count;
	if (b & 1 << 6)
		classes[SP_CLASS_VLAN] += count;
	if (b & 1 << 7)
		classes[SP_CLASS_MULTICAST] += count;
	if (b & 1 << 8)
		classes[SP_CLASS_SCATTERED] += count;
}
