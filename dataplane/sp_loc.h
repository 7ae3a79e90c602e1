/* Locators: where an object of an enhanced service lives, as resolved by the control thread and
 * handed to the workers (worker ↔ control message and the worker's locator cache). */
#ifndef SP_LOC_H
#define SP_LOC_H

#include <stdint.h>

#define SP_LOC_NAME_MAX 1024 /* "/bucket/key" as the client sent it (percent-encoded) */
#define SP_LOC_PATH_MAX 1024 /* the object's request path on a storage node, as sent */
#define SP_LOC_NODES 3	     /* replicas kept per locator, in the manager's order */
#define SP_LOC_CRED_MAX 160  /* one X-SP-Node-Auth value ("id:expires:64 hex") */

/* The HTTP methods that can go direct; also the index of a locator's credentials. */
enum sp_loc_method { SP_LOC_GET = 0, SP_LOC_HEAD, SP_LOC_PUT, SP_LOC_DELETE, SP_LOC_METHODS };

/* Which storage manager call answers it: where an object is (locate) or where it goes (place). */
enum sp_loc_op {
	SP_LOC_OP_READ = 0, /* GET, HEAD, DELETE: GET /locate?bucket=&key= */
	SP_LOC_OP_WRITE,    /* PUT: GET /place?bucket=&key= */
};

enum sp_loc_status {
	SP_LOC_FOUND = 0, /* nodes, path and credentials are valid */
	SP_LOC_NOT_FOUND, /* the manager answered 404 (no such key/bucket): take the ordinary path
			   */
	SP_LOC_FAILED,	  /* the manager could not answer (down, timeout, bad answer) */
	SP_LOC_BAD_NAME,  /* the name is not /bucket/key (or cannot be decoded) */
};

/* What a message is for. */
enum sp_loc_kind {
	SP_LOC_RESOLVE = 1, /* worker → control: resolve name for flow; control → worker: answer */
	SP_LOC_PREFETCH,    /* control → worker: a locator the worker did not ask for (prefetch,
			     * refresh); flow is unused */
	SP_LOC_REFRESH,	    /* worker → control: name is used and its locator nearly expired:
			     * resolve again and send it as SP_LOC_PREFETCH (no flow waits) */
	SP_LOC_LISTING,	    /* worker → control: a listing of bucket (name = "/bucket", query =
			     * the request's query string) went the ordinary way: prefetch the
			     * locators of the keys it returns */
};

/*
 * One message, from the dataplane's locator mempool (dp->loc_pool). The side that dequeues it
 * owns it: the control thread answers a RESOLVE by filling it and enqueueing the same object on
 * the worker's ring (dp->workers[worker]->loc_ring); the worker copies what it needs and puts it
 * back with rte_mempool_put. REFRESH and LISTING messages are put back by the control thread.
 * PREFETCH objects are taken from the pool by the control thread, one per worker.
 */
struct sp_loc_msg {
	uint8_t kind;	/* enum sp_loc_kind */
	uint8_t op;	/* enum sp_loc_op */
	uint8_t status; /* enum sp_loc_status: set by the control thread */
	uint8_t n_nodes;
	uint16_t worker;    /* the asking worker */
	uint16_t svc_slot;  /* the service (sp_svc.h slot) */
	uint32_t flow;	    /* the held flow's index in the worker's flow table ... */
	uint32_t flow_gen;  /* ... and its generation (a reused index is not resumed) */
	uint64_t svc_epoch; /* the services epoch the worker saw (ignored by control for now) */
	uint32_t node_ip[SP_LOC_NODES];	  /* IPv4, network byte order */
	uint16_t node_port[SP_LOC_NODES]; /* network byte order */
	uint32_t ttl_ms;		  /* how long the worker may use it (control sets it) */
	int64_t cred_expires;		  /* unix seconds: the credentials' expiry */
	uint64_t size;			  /* object size (locate), 0 for place */
	uint16_t name_len;
	uint16_t path_len;
	uint16_t query_len;
	uint8_t cred_len[SP_LOC_METHODS];
	char name[SP_LOC_NAME_MAX];		    /* not NUL-terminated; name_len bytes */
	char path[SP_LOC_PATH_MAX];		    /* not NUL-terminated; path_len bytes */
	char query[SP_LOC_NAME_MAX];		    /* LISTING only */
	char cred[SP_LOC_METHODS][SP_LOC_CRED_MAX]; /* X-SP-Node-Auth value per method over path */
};

#endif /* SP_LOC_H */
