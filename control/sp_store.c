/* Redis-kept stores of the control thread: change queue, epoch-key writes, epoch probe. */
#include "sp_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <rte_common.h>

#include "sp_api.h"
#include "sp_redis.h"

static void run_queue(struct sp_store *st);

void
sp_store_reply_error(struct sp_store_op *op, int code, const char *ecode, const char *field,
		     const char *msg)
{
	if (op->req != NULL)
		sp_api_send_error(op->req, code, ecode, field, "%s", msg);
	op->req = NULL;
}

/* Take op off the queue and free it. */
static void
op_drop(struct sp_store_op *op)
{
	struct sp_store *st = op->st;

	TAILQ_REMOVE(&st->queue, op, next);
	if (op->reload)
		st->reload_queued = false;
	st->ops->op_free(op);
}

void
sp_store_op_done(struct sp_store_op *op)
{
	struct sp_store *st = op->st;

	op_drop(op);
	st->busy = false;
	run_queue(st);
}

/* A reload after after (the end of the queue when NULL), unless one is waiting already. */
static void
queue_reload_after(struct sp_store *st, struct sp_store_op *after)
{
	struct sp_store_op *op;

	if (st->reload_queued || st->stopping)
		return;
	op = calloc(1, st->ops->op_size);
	if (op == NULL)
		return;
	op->st = st;
	op->reload = true;
	st->reload_queued = true;
	if (after != NULL)
		TAILQ_INSERT_AFTER(&st->queue, after, op, next);
	else
		TAILQ_INSERT_TAIL(&st->queue, op, next);
}

void
sp_store_ignore_reply(void *arg, const redisReply *reply)
{
	RTE_SET_USED(arg);
	RTE_SET_USED(reply);
}

uint64_t
sp_store_reply_u64(const redisReply *r)
{
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return (uint64_t)r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoull(r->str, NULL, 10);
	return 0;
}

/* ---- writes ------------------------------------------------------------------------------- */

int
sp_store_multi(struct sp_store *st)
{
	return sp_redis_command(st->redis, sp_store_ignore_reply, NULL, "MULTI");
}

/* EXEC of MULTI / the change's commands / INCR epoch. */
static void
on_write(void *arg, const redisReply *reply)
{
	struct sp_store_op *op = arg;
	struct sp_store *st = op->st;
	size_t want = op->replies;
	uint64_t epoch;
	bool others;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != want ||
	    reply->element[want - 1]->type != REDIS_REPLY_INTEGER) {
		sp_store_reply_error(op, 503, "redis_unavailable", NULL,
				     reply == NULL
					     ? "Redis did not answer: nothing was changed"
					     : "Redis refused the change: nothing was changed");
		sp_store_op_done(op);
		return;
	}
	epoch = (uint64_t)reply->element[want - 1]->integer;
	others = epoch != st->epoch + 1; /* somebody else wrote in between: read it all again */
	if (st->ops->written(op, epoch) == 0 && others)
		queue_reload_after(st, op);
	sp_store_op_done(op);
}

int
sp_store_exec(struct sp_store_op *op, unsigned int n_cmds)
{
	struct sp_store *st = op->st;
	int rc;

	op->replies = n_cmds + 1;
	rc = sp_redis_command(st->redis, sp_store_ignore_reply, NULL, "INCR %s",
			      st->ops->epoch_key);
	if (rc == 0)
		rc = sp_redis_command(st->redis, on_write, op, "EXEC");
	return rc;
}

/* ---- the queue ---------------------------------------------------------------------------- */

/* Start the head of the queue, or finish what cannot start. */
static void
run_queue(struct sp_store *st)
{
	struct sp_store_op *op;

	while (!st->busy && (op = TAILQ_FIRST(&st->queue)) != NULL) {
		if (st->redis == NULL || !sp_redis_up(st->redis)) {
			sp_store_reply_error(op, 503, "redis_unavailable", NULL,
					     "Redis is unavailable: changes cannot be stored now");
			op_drop(op);
			continue;
		}
		if (op->reload) {
			if (st->ops->reload(op) != 0) {
				op_drop(op);
				continue;
			}
		} else {
			if (st->ops->prepare(op) != 0) {
				op_drop(op);
				continue;
			}
			if (st->ops->send(op) != 0) {
				/* the connection broke while queueing: EXEC's callback never comes
				 */
				sp_store_reply_error(
					op, 503, "redis_unavailable", NULL,
					"Redis is unavailable: changes cannot be stored now");
				op_drop(op);
				continue;
			}
		}
		st->busy = true;
	}
}

void
sp_store_submit(struct sp_store *st, struct sp_store_op *op, struct evhttp_request *req)
{
	op->st = st;
	op->req = req;
	op->reload = false;
	if (st->redis == NULL || !sp_redis_up(st->redis)) {
		sp_store_reply_error(op, 503, "redis_unavailable", NULL,
				     "Redis is unavailable: changes cannot be stored now");
		st->ops->op_free(op);
		return;
	}
	TAILQ_INSERT_TAIL(&st->queue, op, next);
	run_queue(st);
}

static void
queue_reload(struct sp_store *st)
{
	queue_reload_after(st, NULL);
	run_queue(st);
}

/* ---- Redis events ------------------------------------------------------------------------- */

static void
on_redis_up(void *arg)
{
	queue_reload(arg);
}

static void
on_epoch(void *arg, const redisReply *reply)
{
	struct sp_store *st = arg;

	st->epoch_probe = false;
	if (reply == NULL || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL))
		return;
	if (!st->loaded || sp_store_reply_u64(reply) != st->epoch)
		queue_reload(st);
}

/* With every heartbeat: has anybody changed the store (another shortpathd)? */
static void
on_redis_beat(void *arg)
{
	struct sp_store *st = arg;

	if (st->epoch_probe || st->busy || !TAILQ_EMPTY(&st->queue) || st->stopping)
		return;
	if (sp_redis_command(st->redis, on_epoch, st, "GET %s", st->ops->epoch_key) == 0)
		st->epoch_probe = true;
}

/* ---- life cycle --------------------------------------------------------------------------- */

void
sp_store_init(struct sp_store *st, const struct sp_store_ops *ops)
{
	memset(st, 0, sizeof(*st));
	st->ops = ops;
	TAILQ_INIT(&st->queue);
}

int
sp_store_attach(struct sp_store *st, struct sp_redis *redis)
{
	int rc = sp_redis_add_listener(redis, on_redis_up, on_redis_beat, st);

	if (rc == 0)
		st->redis = redis;
	return rc;
}

void
sp_store_stop(struct sp_store *st)
{
	st->stopping = true;
}

void
sp_store_fini(struct sp_store *st)
{
	struct sp_store_op *op;

	st->stopping = true;
	while ((op = TAILQ_FIRST(&st->queue)) != NULL) {
		sp_store_reply_error(op, 503, "shutting_down", NULL, "shortpathd is stopping");
		op_drop(op);
	}
}
