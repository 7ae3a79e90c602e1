/* Local authentication (seed 001): the worker ↔ control verification messages, the credential
 * generations both sides read, and the verdicts a worker keeps. */
#ifndef SP_AUTH_H
#define SP_AUTH_H

#include <stdint.h>

#include "sp_policy.h"
#include "sp_sigv4.h"

/* A service's auth mode (sp_svc_profile.auth; the services API's "auth"). */
enum sp_auth_mode {
	SP_AUTH_MODE_SERVICE = 0, /* "service": the service authenticates; nothing goes direct */
	SP_AUTH_MODE_NONE,	  /* "none": nobody authenticates on the direct path */
	SP_AUTH_MODE_FIRST, /* "first": verify once per (VM port, access key), then a verdict */
	SP_AUTH_MODE_EVERY, /* "every-request": every request is verified */
};

#define SP_AUTH_REPLY_MAX 2048 /* bytes of a whole error response the control thread makes */
#define SP_AUTH_GEN_SLOTS 4096 /* credential generation counters (power of two) */

/*
 * Credential generations: dp->auth_gen[sp_auth_gen_slot(svc_slot, access key)]. The control
 * thread adds one (release) whenever a credential of that slot changes or goes (secret, policy,
 * deletion); a verdict carries the value read when its request was verified and is dead once
 * the counter moved. Two credentials may share a counter: a change then costs the other one a
 * verification, nothing more.
 */
static inline uint32_t
sp_auth_gen_slot(uint16_t svc_slot, const char *ak, uint32_t len)
{
	uint32_t h = 2166136261u ^ svc_slot, i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)ak[i]) * 16777619u;
	return h & (SP_AUTH_GEN_SLOTS - 1);
}

/* What the control thread answers. */
enum sp_auth_status {
	SP_AUTH_OK = 0,	   /* authentic and allowed: the request goes on */
	SP_AUTH_REFUSED,   /* reply[0, reply_len) is the S3 error to send the VM, then close */
	SP_AUTH_UNDECIDED, /* could not decide (credentials not loaded, Redis down, no such
			    * service): the ordinary path, where the service authenticates */
};

/*
 * One verification, from dp->auth_pool (element: sizeof(struct sp_auth_msg) + [dataplane]
 * flow_buffer bytes of data). The worker fills the request part and punts it (SP_PUNT_AUTH); the
 * control thread (dp->auth_handler) fills the answer part and enqueues the same object on
 * dp->workers[worker]->auth_ring; the worker copies what it needs and puts it back. If the
 * control thread cannot enqueue it, it puts it back (the worker's timer takes the ordinary path).
 */
struct sp_auth_msg {
	/* request: set by the worker */
	uint16_t worker;
	uint16_t svc_slot;
	uint16_t port_idx;	 /* the VM's port: the verdict's scope */
	uint8_t mode;		 /* enum sp_auth_mode of the service when the worker saw it */
	uint8_t body_unverified; /* the payload hash is signed but the body did not fit: check
				  * the signature only; an OK sends the request the ordinary way */
	uint32_t flow;		 /* the held flow's index ... */
	uint32_t flow_gen;	 /* ... and generation */
	uint64_t svc_epoch;	 /* the services table's epoch the worker saw */
	uint32_t vm_ip;		 /* network byte order (logs) */
	uint32_t head_len;	 /* data: the request head (sp_http_parse_request's length) ... */
	uint32_t body_len;	 /* ... then this much body (all of it, or 0) */
	/* answer: set by the control thread */
	uint8_t status;		 /* enum sp_auth_status */
	uint8_t verdict;	 /* 1: install a verdict for (port_idx, svc_slot, access_key) */
	uint8_t error;		 /* enum sp_sigv4_error of a refusal (SP_SIGV4_ERR_NONE: policy) */
	uint8_t ak_len;		 /* bytes of access_key (as parsed; set even when refused) */
	uint32_t ttl_ms;	 /* the verdict's lifetime */
	uint32_t cred_gen;	 /* dp->auth_gen[...] as read when the credential was used */
	uint32_t verify_ns;	 /* time the verification took in the control thread */
	uint16_t reply_len;	 /* REFUSED: bytes of reply */
	struct sp_policy policy; /* the credential's policy (with a verdict) */
	char access_key[SP_SIGV4_ACCESS_KEY_MAX + 1];
	char reply[SP_AUTH_REPLY_MAX];
	char data[]; /* head_len + body_len bytes, as the VM sent them */
};

#endif /* SP_AUTH_H */
