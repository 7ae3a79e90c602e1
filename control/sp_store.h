/* Redis-kept stores of the control thread (services, credentials): queue, epoch, probe. */
#ifndef SP_STORE_H
#define SP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct sp_redis;
struct sp_store;
struct evhttp_request;
struct redisReply;

/*
 * One queued change (an API request) or reload: the first member of the owner's op. Ops are
 * processed one at a time, in arrival order; a change is answered once Redis stored it.
 */
struct sp_store_op {
	TAILQ_ENTRY(sp_store_op) next;
	struct sp_store *st;
	struct evhttp_request *req; /* the request to answer; NULL for a reload or once answered */
	bool reload;		    /* a reload (queued by the store) rather than a change */
	unsigned int replies;	    /* EXEC's answers a change expects (sp_store_exec) */
};

/* What differs from one store to another (control thread; op is always the owner's op). */
struct sp_store_ops {
	const char *epoch_key; /* one more with every change (MULTI / ... / INCR / EXEC) */
	size_t op_size; /* bytes of the owner's op, of which struct sp_store_op comes first */
	/* Start reading everything: 0 when a callback will end the reload with
	 * sp_store_op_done() (the store is busy until then), -errno when nothing is in flight. */
	int (*reload)(struct sp_store_op *op);
	/* Check a change against what is loaded: 0 when it may be written; otherwise it has
	 * answered (sp_store_reply_error) and the op is dropped. */
	int (*prepare)(struct sp_store_op *op);
	/* Send the change: whatever can fail before MULTI, then sp_store_multi(), its commands
	 * and sp_store_exec(). -errno: the connection broke (answered 503 by the store). */
	int (*send)(struct sp_store_op *op);
	/* Redis stored the change under epoch: set st->epoch, apply it, answer. Not 0: it could
	 * not be applied here (answered already); no reload is queued after it, even when
	 * another instance wrote in between. */
	int (*written)(struct sp_store_op *op, uint64_t epoch);
	/* Free the owner's op (the store took it off the queue). */
	void (*op_free)(struct sp_store_op *op);
};

/* Embedded in its owner; epoch and loaded are the owner's to set (under its own locks, or
 * atomically, as its readers need), the store reads them on the control thread. */
struct sp_store {
	const struct sp_store_ops *ops;
	struct sp_redis *redis; /* NULL: none (every change is refused) */
	uint64_t epoch;		/* the epoch key's value for what is loaded */
	bool loaded;		/* read from Redis at least once */
	bool busy;		/* the head of the queue is in flight */
	bool epoch_probe;	/* a GET of the epoch key is in flight */
	bool reload_queued;	/* a reload is waiting in the queue */
	bool stopping;		/* no more reloads or probes */
	TAILQ_HEAD(, sp_store_op) queue;
};

/* Set up an empty store without Redis. */
void sp_store_init(struct sp_store *st, const struct sp_store_ops *ops);
/* Keep the store in redis: a reload on every connect, a probe of the epoch with every
 * heartbeat (a reload when it moved). 0, or -errno of sp_redis_add_listener. */
int sp_store_attach(struct sp_store *st, struct sp_redis *redis);
/* No more reloads or epoch probes (shutting down). */
void sp_store_stop(struct sp_store *st);
/* Answer what is still queued with 503 shutting_down and free it (nothing may be in flight:
 * the Redis client is gone). */
void sp_store_fini(struct sp_store *st);

/* Queue a change answering req: 503 redis_unavailable and freed at once while Redis is down. */
void sp_store_submit(struct sp_store *st, struct sp_store_op *op, struct evhttp_request *req);

/* The head of the queue is done (a reload's last callback): free it and start the next. */
void sp_store_op_done(struct sp_store_op *op);
/* Answer op's request with an API error, if it has one still. */
void sp_store_reply_error(struct sp_store_op *op, int code, const char *ecode, const char *field,
			  const char *msg);

/* For send: open the transaction. 0 or -errno. */
int sp_store_multi(struct sp_store *st);
/* For send, after MULTI and the change's n_cmds commands: INCR the epoch key and EXEC; the
 * answer goes to the written hook. 0 or -errno. */
int sp_store_exec(struct sp_store_op *op, unsigned int n_cmds);

/* A reply callback for commands whose answer EXEC gives (MULTI, the commands inside). */
void sp_store_ignore_reply(void *arg, const struct redisReply *reply);
/* An integer or decimal string reply as a number (0 for anything else, NULL included). */
uint64_t sp_store_reply_u64(const struct redisReply *r);

#endif /* SP_STORE_H */
