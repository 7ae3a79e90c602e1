/* Direct-to-storage 1 KiB GETs per second through the worker's TCP endpoint, vs forwarding
 * (optionally with local authentication: auth first, each request trusted on a verdict), and
 * cached 1 KiB GETs the worker answers itself (--cache: keep-alive or a new connection each). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "sp_auth.h"
#include "sp_cache.h"
#include "sp_cache_http.h"
#include "sp_conf.h"
#include "sp_dp.h"
#include "sp_flow.h"
#include "sp_loc.h"
#include "sp_log.h"
#include "sp_pkt.h"
#include "sp_svc.h"
#include "sp_tcp.h"
#include "sp_tcp_ep.h"

#define VIP RTE_IPV4(10, 0, 0, 10)
#define NODE_IP RTE_IPV4(10, 0, 0, 51)
#define SVC_PORT 80
#define VM_NET RTE_IPV4(10, 1, 0, 0) /* VM source addresses: 10.1.x.y, ports 1024..65535 */
#define PORTS_PER_IP 64512u
#define MSS 1460
#define MAX_CONC 1024
#define OBJ_SIZE 1024
#define CSUM_EVERY 16 /* checksums of every frame of one transaction in CSUM_EVERY */
#define MAX_REPORTED 10
#define MAX_SEGS 10 /* the measurement in segments: the median one is reported */

static const struct rte_ether_addr vm_mac = {{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}};
static const struct rte_ether_addr gw_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}};

/* What the synthetic VM sends (an awscli GetObject), as header lines. */
static const char *const req_line = "GET /bench/obj HTTP/1.1\r\n";
static const char *const req_hdrs[][2] = {
	{"Host", "10.0.0.10"},
	{"Accept-Encoding", "identity"},
	{"User-Agent", "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0-13-amd64 source/x86_64.debian.12 "
		       "prompt/off command/s3api.get-object"},
	{"X-Amz-Date", "20261126T010203Z"},
	{"X-Amz-Content-SHA256",
	 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"Authorization",
	 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/s3/aws4_request, "
	 "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;host;x-amz-content-sha256;"
	 "x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"},
	{"amz-sdk-invocation-id", "0c6a3f1e-8f2b-4c57-9d1e-5b7c2a9e4f10"},
	{"amz-sdk-request", "attempt=1"},
};
static const char *const obj_name = "/bench/obj";
static const char *const node_path = "/objects/bench/obj";
static const char *const resp_head = "HTTP/1.1 200 OK\r\n"
				     "Server: nginx/1.22.1\r\n"
				     "Date: Thu, 26 Nov 2026 01:02:03 GMT\r\n"
				     "Content-Type: binary/octet-stream\r\n"
				     "Content-Length: 1024\r\n"
				     "Last-Modified: Thu, 26 Nov 2026 00:00:00 GMT\r\n"
				     "Connection: close\r\n"
				     "ETag: \"0f343b0931126a20f133d67c2b018a3b\"\r\n"
				     "x-amz-request-id: 4442587FB7D0A2F9\r\n"
				     "Accept-Ranges: bytes\r\n"
				     "\r\n";

/* One transaction's steps: what the VM or the node sends, then what they must get back. */
enum step {
	S_SYN,	   /* VM SYN → SYN-ACK with the cookie */
	S_REQ,	   /* VM ACK + GET head → ACK to the VM, SYN to the node */
	S_SYNACK,  /* node SYN-ACK → ACK + rewritten head to the node */
	S_RESP,	   /* node response head + body, FIN → both to the VM */
	S_CLOSE,   /* VM ACK, FIN → both to the node */
	S_LASTACK, /* node ACK of the VM's FIN → to the VM */
	S_MAX,
	S_IDLE = S_MAX,
};

static const char *const step_names[] = {"syn",	  "request",  "node_synack", "response",
					 "close", "last_ack", "idle"};

/* --cache: a connection's steps (S_IDLE when none). Keep-alive: C_SYN, C_GET again and again,
 * C_FIN, C_LASTACK; --new-conn (the request says Connection: close): C_SYN, C_GET, C_FIN. */
enum cstep {
	C_SYN,	   /* VM SYN → SYN-ACK */
	C_GET,	   /* (the first: VM handshake ACK +) VM GET acknowledging the previous response →
		    * (an ACK +) the response from the cache */
	C_FIN,	   /* VM FIN → keep-alive: (an ACK +) the endpoint's FIN; close: its ACK */
	C_LASTACK, /* VM ACK of the endpoint's FIN → nothing (the flow is freed) */
};

static const char *const cstep_names[] = {"syn", "get", "fin", "last_ack", "", "", "idle"};

/* Frames that go into the endpoint, by kind (9 per transaction; the cache modes use the VM's
 * only, and vm_last_ack: the VM's ACK of the endpoint's FIN). */
#define KINDS(X)                                                                                   \
	X(VM_SYN, "vm_syn")                                                                        \
	X(VM_ACK, "vm_handshake_ack")                                                              \
	X(VM_GET, "vm_get_head")                                                                   \
	X(NODE_SYNACK, "node_synack")                                                              \
	X(NODE_RESP, "node_response")                                                              \
	X(NODE_FIN, "node_fin")                                                                    \
	X(VM_ACK_RESP, "vm_ack_response")                                                          \
	X(VM_FIN, "vm_fin")                                                                        \
	X(NODE_LAST_ACK, "node_last_ack")                                                          \
	X(VM_LAST_ACK, "vm_last_ack")

enum kind {
#define KIND_ENUM(e, s) K_##e,
	KINDS(KIND_ENUM)
#undef KIND_ENUM
		K_MAX
};

static const char *const kind_names[] = {
#define KIND_NAME(e, s) s,
	KINDS(KIND_NAME)
#undef KIND_NAME
};

/* One transaction in flight: the VM's socket and the node's, seen from both ends. */
struct txn {
	uint32_t id;
	uint8_t step;
	uint8_t delay;	    /* rounds to wait before the first transaction (staggers the slots) */
	uint8_t n_vm, n_up; /* frames received this step, per port */
	bool csum;	    /* verify every checksum of this transaction */
	uint32_t vm_ip;	    /* network byte order */
	uint16_t vm_port;   /* host byte order */
	uint16_t vm_ipid, node_ipid;
	uint32_t vm_isn, cookie, be_isn, node_isn;
	uint32_t head_got; /* rewritten head bytes the node received */
	/* --cache */
	uint32_t vm_seq;   /* the VM's next sequence number */
	uint32_t our_seq;  /* the endpoint's next (what the VM has received up to) */
	uint32_t resp_got; /* bytes of the current response received */
	uint8_t n_ack;	   /* pure ACKs to the VM this step */
	uint8_t resp_segs; /* segments of the response this step */
	bool first;	   /* the connection's first GET (the handshake ACK goes with it) */
	bool fin_got;	   /* the endpoint's FIN arrived this step */
	uint32_t gets;	   /* GETs answered on this connection */
};

struct frame {
	struct rte_mbuf *m;
	uint16_t slot;
	uint8_t kind;
	uint8_t from_vm;
};

/* What one pass measured. */
struct acc {
	uint64_t done; /* transactions completed */
	uint64_t frames_in, frames_out;
	uint64_t cyc_ep;     /* the endpoint: classify + service lookup + sp_tcp_* + poll ... */
	uint64_t ep_frames;  /* ... for these frames in (bursts not left out) */
	uint64_t ep_out;     /* bursts left out: longer than b->outlier_cyc (preempted) */
	uint64_t cyc_ref[2]; /* the references on copies of the same frames: [busy] */
	uint64_t ref_frames[2];
	uint64_t ref_out[2];
	uint64_t bursts;
	uint64_t cyc_gen;   /* the synthetic VM and node making frames */
	uint64_t cyc_check; /* taking the endpoint's frames, checking and freeing them */
	uint64_t cyc_wall;
	uint64_t kind_cyc[K_MAX], kind_n[K_MAX];
	uint64_t poll_cyc, poll_n;
};

struct bench {
	struct sp_dp *dp;
	struct sp_worker *w;
	struct sp_svc_table *svc;     /* VIP:80 direct, GET enhanced: the endpoint's table */
	struct sp_svc_table *svc_ref; /* the same service, not direct: the reference's */
	uint16_t vm_idx, up_idx;
	unsigned int burst, conc;
	uint32_t next_id;
	uint64_t failures;
	uint64_t csum_frames; /* frames whose checksums were verified */
	uint64_t rdtsc_cost;  /* cycles of an empty rte_rdtsc() interval */
	uint64_t outlier_cyc; /* a burst (or a frame) taking longer was preempted */
	uint64_t nivcsw;      /* involuntary context switches during the measurement */
	uint64_t flows_after_run, in_use_start, in_use_end;
	unsigned int max_flows;
	uint32_t tuples;  /* distinct (VM address, port) pairs, cycled */
	double parse_cyc; /* sp_http_parse_request of the head alone (best of 20000) */
	bool per_frame, with_ref;
	bool auth_first; /* --auth-first: the service's auth is "first", a verdict is in place */
	bool cache;	 /* --cache: the object is in the cache, the worker answers GETs itself */
	bool new_conn;	 /* --new-conn: a connection per GET (Connection: close) */
	uint32_t kind_mask;    /* the kinds of frame this mode sends */
	unsigned int busy;     /* slots with a transaction or connection in flight */
	uint64_t conns;	       /* connections opened (--cache), every pass */
	uint64_t next_get;     /* GETs started (--cache), every pass: every CSUM_EVERY-th checked */
	uint64_t resp_checked; /* responses compared byte for byte (--cache: every one) */
	uint64_t ids_checked;  /* ... whose Date and x-amz-request-id were checked too */
	struct sp_cache_entry *centry; /* the entry tcp_bench put in the cache */
	char cresp[2048];	       /* the response a hit must get: Date and request id masked */
	uint32_t cresp_len;
	uint32_t date_off, reqid_off; /* where the Date and x-amz-request-id values are in cresp */
	char req[2048];
	uint32_t req_len;
	char exp_head[2048]; /* the head the node must receive */
	uint32_t exp_len;
	unsigned int head_segs;
	char resp[2048];
	uint32_t resp_len;
	struct acc snap[MAX_SEGS + 1];
	unsigned int n_snap;
	struct txn slots[MAX_CONC];
	uint16_t port_slot[65536]; /* VM source port → slot of the transaction using it */
	struct acc a;
};

static void
failf(struct bench *b, const struct txn *t, const char *fmt, ...)
{
	va_list ap;

	if (b->failures++ >= MAX_REPORTED)
		return;
	if (t != NULL)
		fprintf(stderr, "tcp_bench: FAIL %s %u (step %s): ",
			b->cache ? "connection" : "transaction", t->id,
			(b->cache ? cstep_names : step_names)[t->step]);
	else
		fprintf(stderr, "tcp_bench: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the synthetic VM and storage node: frames as a Linux stack writes them ------------------ */

static struct rte_mbuf *
make_frame(struct bench *b, struct txn *t, bool from_vm, uint32_t seq, uint32_t ack, uint8_t flags,
	   uint16_t win, const uint8_t *opt, uint8_t optlen, const void *pl, uint32_t plen)
{
	struct sp_tcp_seg s = {
		.src_mac = from_vm ? &vm_mac : &gw_mac,
		.dst_mac = from_vm ? &gw_mac : &vm_mac,
		.src_ip = from_vm ? t->vm_ip : rte_cpu_to_be_32(NODE_IP),
		.dst_ip = from_vm ? rte_cpu_to_be_32(VIP) : t->vm_ip,
		.sport = rte_cpu_to_be_16(from_vm ? t->vm_port : SVC_PORT),
		.dport = rte_cpu_to_be_16(from_vm ? SVC_PORT : t->vm_port),
		.seq = seq,
		.ack = ack,
		.flags = flags,
		.win = win,
		.ip_id = from_vm ? t->vm_ipid++ : t->node_ipid++,
		.opt = opt,
		.optlen = optlen,
	};
	struct rte_mbuf *m;

	m = rte_pktmbuf_alloc(b->dp->pool);
	if (m == NULL) {
		failf(b, t, "packet pool empty");
		return NULL;
	}
	if (sp_tcp_seg_write(m, &s, pl, plen, NULL, 0) != 0) {
		rte_pktmbuf_free(m);
		failf(b, t, "frame too large for an mbuf");
		return NULL;
	}
	return m;
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint32_t
rnd32(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

static void
txn_start(struct bench *b, unsigned int si)
{
	struct txn *t = &b->slots[si];
	uint32_t id = b->next_id++;

	t->id = id;
	t->step = S_SYN;
	t->n_vm = t->n_up = 0;
	t->csum = id % CSUM_EVERY == 0;
	t->vm_ip = rte_cpu_to_be_32(VM_NET + 1 + id % b->tuples / PORTS_PER_IP);
	t->vm_port = (uint16_t)(1024 + id % b->tuples % PORTS_PER_IP);
	t->vm_isn = rnd32();
	t->node_isn = rnd32();
	t->vm_ipid = (uint16_t)rnd32();
	t->node_ipid = 0;
	t->cookie = t->be_isn = 0;
	t->head_got = 0;
	b->port_slot[t->vm_port] = (uint16_t)si;
	b->busy++;
}

/* --cache: a new connection in slot si (its first GET is counted as started by the caller). */
static void
conn_start(struct bench *b, unsigned int si)
{
	struct txn *t = &b->slots[si];

	txn_start(b, si);
	t->step = C_SYN;
	t->vm_seq = t->vm_isn + 1;
	t->our_seq = 0;
	t->first = true;
	t->gets = 0;
	t->resp_got = 0;
	t->n_ack = t->resp_segs = 0;
	t->fin_got = false;
	b->conns++;
}

/* --cache: the next GET on slot si's connection; its frames are checksummed 1 in CSUM_EVERY. */
static void
get_start(struct bench *b, unsigned int si)
{
	struct txn *t = &b->slots[si];

	t->csum = b->next_get++ % CSUM_EVERY == 0;
}

/* The frames slot si sends in its current step, appended at out. Returns how many. */
static unsigned int
gen_step(struct bench *b, unsigned int si, struct frame *out)
{
	/* Linux's SYN options: MSS, SACK permitted, timestamps, NOP, window scale */
	static const uint8_t vm_syn_opt[20] = {2, 4, MSS >> 8, MSS & 0xff, 4, 2, 8, 10, 0, 0,
					       0, 1, 0,	       0,	   0, 0, 1, 3,	3, 7};
	/* Linux's SYN-ACK to a SYN with only MSS and window scale: MSS, NOP, window scale */
	static const uint8_t node_synack_opt[8] = {2, 4, MSS >> 8, MSS & 0xff, 1, 3, 3, 7};
	struct txn *t = &b->slots[si];
	uint32_t vm_data = t->vm_isn + 1 + b->req_len;	    /* VM seq after its request */
	uint32_t node_data = t->node_isn + 1 + b->resp_len; /* node seq after the response */
	uint32_t be_data = t->be_isn + 1 + b->exp_len;	    /* what the node got, + 1 */
	unsigned int n = 0;

#define EMIT(from_vm, k, ...)                                                                      \
	do {                                                                                       \
		struct rte_mbuf *m_ = make_frame(b, t, from_vm, __VA_ARGS__);                      \
		if (m_ == NULL)                                                                    \
			return n;                                                                  \
		out[n++] = (struct frame){m_, (uint16_t)si, K_##k, from_vm};                       \
	} while (0)
	switch (t->step) {
	case S_SYN:
		EMIT(true, VM_SYN, t->vm_isn, 0, RTE_TCP_SYN_FLAG, 64240, vm_syn_opt, 20, NULL, 0);
		break;
	case S_REQ:
		EMIT(true, VM_ACK, t->vm_isn + 1, t->cookie + 1, RTE_TCP_ACK_FLAG, 502, NULL, 0,
		     NULL, 0);
		EMIT(true, VM_GET, t->vm_isn + 1, t->cookie + 1,
		     RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 502, NULL, 0, b->req, b->req_len);
		break;
	case S_SYNACK:
		EMIT(false, NODE_SYNACK, t->node_isn, t->be_isn + 1,
		     RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 65160, node_synack_opt, 8, NULL, 0);
		break;
	case S_RESP:
		EMIT(false, NODE_RESP, t->node_isn + 1, be_data,
		     RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 507, NULL, 0, b->resp, b->resp_len);
		EMIT(false, NODE_FIN, node_data, be_data, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 507,
		     NULL, 0, NULL, 0);
		break;
	case S_CLOSE:
		EMIT(true, VM_ACK_RESP, vm_data, t->cookie + 1 + b->resp_len + 1, RTE_TCP_ACK_FLAG,
		     501, NULL, 0, NULL, 0);
		EMIT(true, VM_FIN, vm_data, t->cookie + 1 + b->resp_len + 1,
		     RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 501, NULL, 0, NULL, 0);
		break;
	case S_LASTACK:
		EMIT(false, NODE_LAST_ACK, node_data + 1, be_data + 1, RTE_TCP_ACK_FLAG, 507, NULL,
		     0, NULL, 0);
		break;
	default:
		break;
	}
	return n;
}

/* --cache: the frames the VM of slot si sends in its connection's current step, at out. */
static unsigned int
gen_cstep(struct bench *b, unsigned int si, struct frame *out)
{
	static const uint8_t vm_syn_opt[20] = {2, 4, MSS >> 8, MSS & 0xff, 4, 2, 8, 10, 0, 0,
					       0, 1, 0,	       0,	   0, 0, 1, 3,	3, 7};
	struct txn *t = &b->slots[si];
	unsigned int n = 0;

	switch (t->step) {
	case C_SYN:
		EMIT(true, VM_SYN, t->vm_isn, 0, RTE_TCP_SYN_FLAG, 64240, vm_syn_opt, 20, NULL, 0);
		break;
	case C_GET:
		if (t->first)
			EMIT(true, VM_ACK, t->vm_seq, t->our_seq, RTE_TCP_ACK_FLAG, 502, NULL, 0,
			     NULL, 0);
		/* acknowledges the previous response: the client read it, sends the next */
		EMIT(true, VM_GET, t->vm_seq, t->our_seq, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 502,
		     NULL, 0, b->req, b->req_len);
		break;
	case C_FIN:
		EMIT(true, VM_FIN, t->vm_seq, t->our_seq, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 502,
		     NULL, 0, NULL, 0);
		break;
	case C_LASTACK:
		EMIT(true, VM_LAST_ACK, t->vm_seq + 1, t->our_seq, RTE_TCP_ACK_FLAG, 502, NULL, 0,
		     NULL, 0);
		break;
	default:
		break;
	}
	return n;
}
#undef EMIT

/* ---- checking what the endpoint sent --------------------------------------------------------- */

struct out_seg {
	const struct rte_ipv4_hdr *ip;
	const struct rte_tcp_hdr *tcp;
	const uint8_t *pl;
	uint32_t plen, seq, ack;
	uint8_t flags;
};

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failf(b, t, __VA_ARGS__);                                                  \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* The endpoint's SYN-ACK to the VM's SYN: the cookie, MSS and window scale, no timestamps. */
static void
check_synack(struct bench *b, struct txn *t, const struct out_seg *s)
{
	struct sp_tcp_opts o;

	CHECK(s->flags == (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG) && s->ack == t->vm_isn + 1 &&
		      s->plen == 0,
	      "SYN-ACK flags %#x ack %u", s->flags, s->ack);
	CHECK(sp_tcp_parse_opts((const uint8_t *)(s->tcp + 1),
				(size_t)(s->pl - (const uint8_t *)(s->tcp + 1)),
				&o) == SP_TCP_OPT_OK &&
		      o.has_mss && o.mss == MSS && o.has_wscale && !o.has_ts,
	      "SYN-ACK options");
	t->cookie = s->seq;
}

/* got (len bytes) is cresp at off, but for the values of Date and x-amz-request-id. */
static bool
cresp_matches(const struct bench *b, uint32_t off, const uint8_t *got, uint32_t len)
{
	const struct {
		uint32_t off, len;
	} skip[3] = {{b->date_off, SP_HTTP_DATE_LEN}, {b->reqid_off, 16}, {b->cresp_len, 0}};
	uint32_t at = off, end = off + len, i;

	for (i = 0; i < 3 && at < end; i++) {
		uint32_t to = RTE_MIN(RTE_MAX(skip[i].off, at), end);

		if (memcmp(got + (at - off), b->cresp + at, to - at) != 0)
			return false;
		at = RTE_MAX(to, RTE_MIN(skip[i].off + skip[i].len, end));
	}
	return true;
}

/* The masked values of a response whose head is whole in got (len bytes at 0): a date the
 * service's parser reads, 16 upper-case hex digits. */
static bool
cresp_values_ok(const struct bench *b, const uint8_t *got, uint32_t len)
{
	int64_t d;
	uint32_t i;

	if (len < b->reqid_off + 16 || len < b->date_off + SP_HTTP_DATE_LEN ||
	    sp_http_date_parse((const char *)got + b->date_off, SP_HTTP_DATE_LEN, &d) != 0 ||
	    llabs(d - (int64_t)time(NULL)) > 5)
		return false;
	for (i = 0; i < 16; i++) {
		uint8_t c = got[b->reqid_off + i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* --cache: one frame the endpoint sent to the VM of connection t. */
static void
check_cache(struct bench *b, struct txn *t, const struct out_seg *s)
{
	const uint32_t ack = t->vm_seq + (t->step == C_GET ? b->req_len : 1);
	const bool pure_ack = s->flags == RTE_TCP_ACK_FLAG && s->plen == 0;

	t->n_vm++;
	switch (t->step) {
	case C_SYN:
		CHECK(t->n_vm == 1, "more than one SYN-ACK for a SYN");
		check_synack(b, t, s);
		t->our_seq = t->cookie + 1;
		return;
	case C_GET:
		CHECK(s->ack == ack, "ack to the VM %u, want %u (flags %#x)", s->ack, ack,
		      s->flags);
		if (pure_ack) { /* the request's ACK, before the response */
			CHECK(t->resp_got == 0 && t->n_ack++ == 0 && s->seq == t->our_seq,
			      "an ACK of the request after the response, a second one, or at seq "
			      "%u "
			      "(want %u)",
			      s->seq, t->our_seq);
			return;
		}
		CHECK((s->flags & ~(RTE_TCP_PSH_FLAG | RTE_TCP_FIN_FLAG)) == RTE_TCP_ACK_FLAG &&
			      s->plen > 0 && s->seq == t->our_seq + t->resp_got &&
			      t->resp_got + s->plen <= b->cresp_len,
		      "a response segment: flags %#x seq %u (want %u) %u bytes after %u of %u",
		      s->flags, s->seq, t->our_seq + t->resp_got, s->plen, t->resp_got,
		      b->cresp_len);
		CHECK(cresp_matches(b, t->resp_got, s->pl, s->plen),
		      "the response differs from the cached one's (%u bytes at %u): %.*s", s->plen,
		      t->resp_got, (int)RTE_MIN(s->plen, 64u), (const char *)s->pl);
		if (t->resp_got == 0 && t->csum) {
			CHECK(cresp_values_ok(b, s->pl, s->plen),
			      "the response's Date or x-amz-request-id: %.*s",
			      (int)RTE_MIN(s->plen, b->reqid_off + 16), (const char *)s->pl);
			b->ids_checked++;
		}
		t->resp_got += s->plen;
		t->resp_segs++;
		if (t->resp_got == b->cresp_len) {
			CHECK((s->flags & RTE_TCP_PSH_FLAG) &&
				      !!(s->flags & RTE_TCP_FIN_FLAG) == b->new_conn,
			      "the response's last segment: flags %#x (FIN %s)", s->flags,
			      b->new_conn ? "wanted: Connection: close" : "not wanted: keep-alive");
			b->resp_checked++;
		} else {
			CHECK(!(s->flags & RTE_TCP_FIN_FLAG), "a FIN before the response's end");
		}
		return;
	case C_FIN:
		CHECK(s->ack == ack && s->plen == 0 && s->seq == t->our_seq,
		      "the answer to the VM's FIN: flags %#x seq %u ack %u, want seq %u ack %u",
		      s->flags, s->seq, s->ack, t->our_seq, ack);
		if (pure_ack) {
			CHECK(!t->fin_got && t->n_ack++ == 0, "an ACK of the VM's FIN, again");
			return;
		}
		CHECK(!b->new_conn && !t->fin_got &&
			      s->flags == (RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG),
		      "the endpoint's FIN: flags %#x", s->flags);
		t->fin_got = true;
		return;
	default:
		failf(b, t, "a frame to the VM after its connection closed: flags %#x", s->flags);
		return;
	}
}

/* One frame the endpoint queued on the VM's port (on_vm) or the uplink. */
static void
check_out(struct bench *b, struct rte_mbuf *m, bool on_vm)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)p;
	struct sp_pkt_info pi;
	struct sp_tcp_opts o;
	struct out_seg s;
	struct txn *t = NULL;
	uint16_t vm_port;
	unsigned int idx;

	if (m->nb_segs != 1 || sp_pkt_parse(p, rte_pktmbuf_data_len(m), &pi) != 0 ||
	    pi.l3 != SP_L3_IPV4 || pi.l4 != SP_L4_TCP) {
		failf(b, NULL, "the endpoint sent a frame that is not one TCP/IPv4 segment");
		return;
	}
	s.ip = (const struct rte_ipv4_hdr *)(p + pi.l3_off);
	s.tcp = (const struct rte_tcp_hdr *)(p + pi.l4_off);
	s.pl = p + pi.payload_off;
	s.plen = pi.l3_end - pi.payload_off;
	s.seq = rte_be_to_cpu_32(s.tcp->sent_seq);
	s.ack = rte_be_to_cpu_32(s.tcp->recv_ack);
	s.flags = s.tcp->tcp_flags;
	if (b->cache && !on_vm) {
		failf(b, NULL,
		      "a frame to the uplink (flags %#x, %u bytes): a hit sends nothing to the "
		      "storage node",
		      s.flags, s.plen);
		return;
	}
	vm_port = on_vm ? pi.dport : pi.sport;
	t = &b->slots[b->port_slot[vm_port]];
	if (t->step == S_IDLE || t->vm_port != vm_port ||
	    (on_vm ? s.ip->dst_addr : s.ip->src_addr) != t->vm_ip) {
		t = NULL;
		failf(b, NULL, "a frame %s for no transaction in flight (port %u)",
		      on_vm ? "to a VM" : "to the uplink", vm_port);
		return;
	}
	/* addressing: the VM only ever sees the service's address; the node sees the VM's */
	if (on_vm) {
		CHECK(rte_is_same_ether_addr(&eth->dst_addr, &vm_mac) &&
			      rte_is_same_ether_addr(&eth->src_addr, &gw_mac),
		      "MACs of a frame to the VM");
		CHECK(s.ip->src_addr == rte_cpu_to_be_32(VIP) && pi.sport == SVC_PORT,
		      "a frame to the VM not from VIP:80");
	} else {
		CHECK(rte_is_same_ether_addr(&eth->src_addr, &vm_mac) &&
			      rte_is_same_ether_addr(&eth->dst_addr, &gw_mac),
		      "MACs of a frame to the node");
		CHECK(s.ip->dst_addr == rte_cpu_to_be_32(NODE_IP) && pi.dport == SVC_PORT,
		      "a frame to the uplink not to the node 10.0.0.51:80");
	}
	if (t->csum) {
		CHECK(sp_csum(s.ip, sizeof(*s.ip)) == 0, "bad IPv4 header checksum");
		CHECK(rte_ipv4_udptcp_cksum_verify(s.ip, s.tcp) == 0, "bad TCP checksum");
		b->csum_frames++;
	}
	if (b->cache) {
		check_cache(b, t, &s);
		return;
	}
	idx = on_vm ? t->n_vm++ : t->n_up++;
	switch (t->step) {
	case S_SYN:
		CHECK(on_vm, "the VM's SYN made a frame to the node (flags %#x)", s.flags);
		CHECK(idx == 0, "more than one SYN-ACK for a SYN");
		CHECK(s.flags == (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG) && s.ack == t->vm_isn + 1,
		      "SYN-ACK flags %#x ack %u", s.flags, s.ack);
		CHECK(sp_tcp_parse_opts((const uint8_t *)(s.tcp + 1),
					(size_t)(s.pl - (const uint8_t *)(s.tcp + 1)),
					&o) == SP_TCP_OPT_OK &&
			      o.has_mss && o.mss == MSS && o.has_wscale && !o.has_ts,
		      "SYN-ACK options");
		t->cookie = s.seq;
		return;
	case S_REQ:
		if (on_vm) {
			CHECK(idx == 0 && s.flags == RTE_TCP_ACK_FLAG && s.plen == 0 &&
				      s.seq == t->cookie + 1 && s.ack == t->vm_isn + 1 + b->req_len,
			      "ACK of the request: flags %#x seq %u ack %u", s.flags, s.seq, s.ack);
			return;
		}
		CHECK(idx == 0 && s.flags == RTE_TCP_SYN_FLAG && s.plen == 0, "SYN to the node");
		t->be_isn = s.seq;
		return;
	case S_SYNACK:
		CHECK(!on_vm, "a frame to the VM before the node answered");
		if (idx == 0) {
			CHECK(s.flags == RTE_TCP_ACK_FLAG && s.plen == 0 &&
				      s.seq == t->be_isn + 1 && s.ack == t->node_isn + 1,
			      "handshake ACK to the node: flags %#x seq %u ack %u", s.flags, s.seq,
			      s.ack);
			return;
		}
		CHECK((s.flags & ~RTE_TCP_PSH_FLAG) == RTE_TCP_ACK_FLAG &&
			      s.ack == t->node_isn + 1 && s.seq == t->be_isn + 1 + t->head_got &&
			      t->head_got + s.plen <= b->exp_len &&
			      memcmp(s.pl, b->exp_head + t->head_got, s.plen) == 0,
		      "the head the node got differs from the expected rewrite (%u bytes at %u)",
		      s.plen, t->head_got);
		t->head_got += s.plen;
		return;
	case S_RESP:
		CHECK(on_vm, "a frame to the node while it answers");
		CHECK(s.ack == t->vm_isn + 1 + b->req_len, "ack to the VM %u, want %u", s.ack,
		      t->vm_isn + 1 + b->req_len);
		if (idx == 0) {
			CHECK((s.flags & ~RTE_TCP_PSH_FLAG) == RTE_TCP_ACK_FLAG &&
				      s.seq == t->cookie + 1 && s.plen == b->resp_len &&
				      memcmp(s.pl, b->resp, b->resp_len) == 0,
			      "the response the VM got differs from what the node sent");
			return;
		}
		CHECK(idx == 1 && s.flags == (RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG) && s.plen == 0 &&
			      s.seq == t->cookie + 1 + b->resp_len,
		      "FIN to the VM: flags %#x seq %u", s.flags, s.seq);
		return;
	case S_CLOSE:
		CHECK(!on_vm, "a frame to the VM while it closes");
		CHECK(idx < 2 && s.plen == 0 && s.seq == t->be_isn + 1 + b->exp_len &&
			      s.ack == t->node_isn + 1 + b->resp_len + 1 &&
			      s.flags == (idx == 0 ? RTE_TCP_ACK_FLAG
						   : RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG),
		      "VM's ACK/FIN to the node: flags %#x seq %u ack %u", s.flags, s.seq, s.ack);
		return;
	case S_LASTACK:
		CHECK(on_vm && idx == 0 && s.flags == RTE_TCP_ACK_FLAG && s.plen == 0 &&
			      s.seq == t->cookie + 1 + b->resp_len + 1 &&
			      s.ack == t->vm_isn + 1 + b->req_len + 1,
		      "node's last ACK to the VM: flags %#x seq %u ack %u", s.flags, s.seq, s.ack);
		return;
	default:
		return;
	}
}

/* Take every frame the endpoint queued (before any flush: nothing is really sent), check, free. */
static void
harvest(struct bench *b)
{
	const uint16_t ports[2] = {b->vm_idx, b->up_idx};
	unsigned int k, i;

	for (k = 0; k < 2; k++) {
		struct sp_txbuf *tb = &b->w->tx[ports[k]];

		for (i = 0; i < tb->n; i++) {
			check_out(b, tb->pkts[i], ports[k] == b->vm_idx);
			rte_pktmbuf_free(tb->pkts[i]);
		}
		b->a.frames_out += tb->n;
		tb->n = 0;
		tb->bytes = 0;
	}
}

/* The step of slot si is over: did it get exactly what it should? Then the next step. */
static void
end_step(struct bench *b, unsigned int si)
{
	static const uint8_t want_vm[S_MAX] = {1, 1, 0, 2, 0, 1};
	struct txn *t = &b->slots[si];
	unsigned int want_up = t->step == S_REQ	     ? 1
			       : t->step == S_SYNACK ? 1 + b->head_segs
			       : t->step == S_CLOSE  ? 2
						     : 0;

	if (t->n_vm != want_vm[t->step] || t->n_up != want_up ||
	    (t->step == S_SYNACK && t->head_got != b->exp_len)) {
		failf(b, t, "%u frames to the VM and %u to the node, want %u and %u", t->n_vm,
		      t->n_up, want_vm[t->step], want_up);
		return;
	}
	t->n_vm = t->n_up = 0;
	if (++t->step == S_MAX) {
		t->step = S_IDLE;
		b->a.done++;
		b->busy--;
	}
}

/* --cache: the step of connection si is over: did it get exactly what it should? */
static void
end_cstep(struct bench *b, unsigned int si)
{
	struct txn *t = &b->slots[si];
	bool ok;

	switch (t->step) {
	case C_SYN:
		ok = t->n_vm == 1;
		break;
	case C_GET:
		ok = t->resp_got == b->cresp_len && t->n_vm == t->n_ack + t->resp_segs;
		break;
	case C_FIN: /* keep-alive: (an ACK,) the FIN; close: the ACK */
		ok = b->new_conn ? t->n_ack == 1 && t->n_vm == 1
				 : t->fin_got && t->n_vm == t->n_ack + 1u;
		break;
	default:
		ok = t->n_vm == 0;
		break;
	}
	if (!ok) {
		failf(b, t,
		      "%u frames to the VM (%u ACKs, %u response segments, %u of %u response "
		      "bytes, FIN %s)",
		      t->n_vm, t->n_ack, t->resp_segs, t->resp_got, b->cresp_len,
		      t->fin_got ? "yes" : "no");
		return;
	}
	t->n_vm = t->n_ack = t->resp_segs = 0;
	switch (t->step) {
	case C_SYN:
		t->step = C_GET;
		return;
	case C_GET:
		b->a.done++;
		t->gets++;
		t->first = false;
		t->vm_seq += b->req_len;
		t->our_seq += t->resp_got + (b->new_conn ? 1 : 0);
		t->resp_got = 0;
		if (b->new_conn)
			t->step = C_FIN; /* else run_pass decides: another GET or C_FIN */
		return;
	case C_FIN:
		if (b->new_conn) {
			t->step = S_IDLE;
			b->busy--;
			return;
		}
		t->our_seq++;
		t->fin_got = false;
		t->step = C_LASTACK;
		return;
	default:
		t->step = S_IDLE;
		b->busy--;
		return;
	}
}

/* ---- what the worker does per frame (sp_worker.c's classify / service_match, not exported) --- */

static inline void
classify(struct sp_worker *w, struct rte_mbuf *m, const struct rte_ether_hdr *eth,
	 struct sp_pkt_info *pi)
{
	sp_pkt_parse_partial((const uint8_t *)eth, rte_pktmbuf_data_len(m), rte_pktmbuf_pkt_len(m),
			     pi);
	if (unlikely(pi->err != SP_PKT_ERR_NONE))
		SP_CNT_ADD(w->stats.parse[pi->err], 1);
	SP_CNT_ADD(w->stats.class_hist[sp_class_bucket(pi->l3, pi->l4, pi->n_vlan != 0,
						       rte_is_multicast_ether_addr(&eth->dst_addr),
						       m->nb_segs > 1)],
		   1);
}

static inline int
service_match(struct sp_worker *w, const struct sp_svc_table *svc, const struct rte_mbuf *m,
	      const struct rte_ether_hdr *eth, const struct sp_pkt_info *pi)
{
	const uint8_t *l3 = (const uint8_t *)eth + pi->l3_off;
	struct sp_svc_counters *c;
	int slot;

	slot = sp_svc_lookup(svc, false, l3 + 16, rte_cpu_to_be_16(pi->dport));
	if (slot < 0)
		return -1;
	c = &w->svc[slot];
	SP_CNT_ADD(c->vm_packets, 1);
	SP_CNT_ADD(c->vm_bytes, m->pkt_len);
	if ((pi->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) == RTE_TCP_SYN_FLAG)
		SP_CNT_ADD(c->vm_syns, 1);
	return (svc->profile[slot].flags & SP_SVC_F_DIRECT) ? slot : -1;
}

/* The endpoint's path for one frame, as sp_worker.c's from_vm / from_uplink take it. */
static inline bool
ep_frame(struct bench *b, struct rte_mbuf *m, bool from_vm, uint64_t now)
{
	struct sp_worker *w = b->w;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct sp_pkt_info pi;

	classify(w, m, eth, &pi);
	if (pi.l4 != SP_L4_TCP || pi.l3 != SP_L3_IPV4 || pi.is_fragment ||
	    pi.err != SP_PKT_ERR_NONE)
		return false;
	if (from_vm) {
		int slot = service_match(w, b->svc, m, eth, &pi);

		return (slot >= 0 || sp_tcp_active(w)) &&
		       sp_tcp_from_vm(w, m, &pi, slot, b->vm_idx, now);
	}
	return sp_tcp_active(w) && sp_tcp_from_uplink(w, m, &pi, now);
}

/*
 * The references: what the worker does to forward the same frame byte-identical when the
 * service is known but not enhanced (classify, service lookup and count, MAC cache for the
 * uplink's frames, tx enqueue). With busy, as it does while the endpoint has live flows: every
 * TCP segment is also looked up in the flow table (sp_tcp_from_vm / sp_tcp_from_uplink, which
 * must not take it). The PMD's rx/tx are left out, as they are from the endpoint's figures.
 */
static inline void
ref_frame(struct bench *b, struct rte_mbuf *m, bool from_vm, bool busy, uint64_t now)
{
	struct sp_worker *w = b->w;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct sp_mac_cache_slot *c;
	struct sp_pkt_info pi;
	bool tcp;
	uint64_t key;
	void *data;
	int slot;

	classify(w, m, eth, &pi);
	tcp = pi.l4 == SP_L4_TCP && pi.l3 == SP_L3_IPV4 && !pi.is_fragment &&
	      pi.err == SP_PKT_ERR_NONE;
	if (from_vm) {
		if (tcp) {
			slot = service_match(w, b->svc_ref, m, eth, &pi);
			if (busy && (slot >= 0 || sp_tcp_active(w)) &&
			    sp_tcp_from_vm(w, m, &pi, slot, b->vm_idx, now)) {
				failf(b, NULL, "the endpoint took a frame of no flow (reference)");
				return;
			}
		}
		sp_worker_tx_enqueue(w, b->up_idx, m);
		return;
	}
	if (busy && tcp && sp_tcp_active(w) && sp_tcp_from_uplink(w, m, &pi, now)) {
		failf(b, NULL, "the endpoint took a frame of no flow (reference)");
		return;
	}
	key = sp_mac_key(&eth->dst_addr);
	c = &w->mac_cache[sp_mac_key_slot(key, SP_MAC_CACHE)];
	if (unlikely(c->mac != key)) {
		if (rte_hash_lookup_data(b->dp->mac_table, &eth->dst_addr, &data) < 0) {
			failf(b, NULL, "the VM's MAC is not in the MAC table");
			rte_pktmbuf_free(m);
			return;
		}
		c->mac = key;
		c->port_idx = (uint16_t)(uintptr_t)data;
	}
	sp_worker_tx_enqueue(w, c->port_idx, m);
}

/* One reference over copies of a burst (timed); then checks the copies were forwarded unchanged
 * and in order, and takes them back from the tx buffers (not timed). */
static void
ref_run(struct bench *b, const struct frame *f, struct rte_mbuf **copy, unsigned int n, bool busy)
{
	struct sp_worker *w = b->w;
	unsigned int i, up = 0, vm = 0;
	uint64_t t0, gen;

	t0 = rte_rdtsc();
	gen = __atomic_load_n(&b->dp->mac_gen, __ATOMIC_ACQUIRE);
	if (unlikely(gen != w->mac_cache_gen)) {
		memset(w->mac_cache, 0, sizeof(w->mac_cache));
		w->mac_cache_gen = gen;
	}
	for (i = 0; i < n; i++)
		ref_frame(b, copy[i], f[i].from_vm, busy, t0);
	t0 = rte_rdtsc() - t0;
	if (t0 > b->outlier_cyc) {
		b->a.ref_out[busy]++;
	} else {
		b->a.cyc_ref[busy] += t0;
		b->a.ref_frames[busy] += n;
	}
	for (i = 0; i < n; i++) {
		struct sp_txbuf *tb = &w->tx[f[i].from_vm ? b->up_idx : b->vm_idx];
		unsigned int j = f[i].from_vm ? up++ : vm++;

		if (j >= tb->n || tb->pkts[j] != copy[i])
			failf(b, NULL, "the reference did not forward frame %u of a burst", i);
	}
	for (i = 0; i < 2; i++) {
		struct sp_txbuf *tb = &w->tx[i == 0 ? b->vm_idx : b->up_idx];

		if (tb->n != (i == 0 ? vm : up))
			failf(b, NULL, "the reference sent %u frames on a port, want %u", tb->n,
			      i == 0 ? vm : up);
		tb->n = 0;
		tb->bytes = 0;
	}
}

/*
 * Both references on copies of a burst: first as forwarded with no live flow, then (the copies'
 * VM address moved to 10.2.0.0/16, so that they belong to no flow) as forwarded while the
 * endpoint has live flows.
 */
static void
ref_burst(struct bench *b, const struct frame *f, unsigned int n)
{
	struct rte_mbuf *copy[SP_TXBUF_MAX];
	unsigned int i;

	for (i = 0; i < n; i++) {
		copy[i] = rte_pktmbuf_copy(f[i].m, b->dp->pool, 0, UINT32_MAX);
		if (copy[i] == NULL) {
			failf(b, NULL, "packet pool empty (reference)");
			rte_pktmbuf_free_bulk(copy, i);
			return;
		}
	}
	ref_run(b, f, copy, n, false);
	for (i = 0; i < n; i++) {
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(copy[i], struct rte_ipv4_hdr *,
								  sizeof(struct rte_ether_hdr));

		if (f[i].from_vm)
			ip->src_addr =
				rte_cpu_to_be_32(rte_be_to_cpu_32(ip->src_addr) + (1u << 16));
		else
			ip->dst_addr =
				rte_cpu_to_be_32(rte_be_to_cpu_32(ip->dst_addr) + (1u << 16));
	}
	ref_run(b, f, copy, n, true);
	rte_pktmbuf_free_bulk(copy, n);
}

/* A burst through the endpoint (timed), then the worker's once-per-loop poll. */
static void
ep_burst(struct bench *b, const struct frame *f, unsigned int n)
{
	uint64_t now = rte_rdtsc(), t0, t1;
	unsigned int i;

	b->a.bursts++;

	if (!b->per_frame) {
		for (i = 0; i < n; i++) {
			if (unlikely(!ep_frame(b, f[i].m, f[i].from_vm, now))) {
				failf(b, &b->slots[f[i].slot],
				      "the endpoint did not take a %s frame (it would be "
				      "forwarded)",
				      kind_names[f[i].kind]);
				rte_pktmbuf_free(f[i].m);
			}
		}
		sp_tcp_poll(b->w, now);
		t0 = rte_rdtsc() - now;
		b->a.frames_in += n;
		if (t0 > b->outlier_cyc) {
			b->a.ep_out++;
		} else {
			b->a.cyc_ep += t0;
			b->a.ep_frames += n;
		}
		return;
	}
	/* per-frame timing (the breakdown): each interval less the cost of reading the TSC */
	for (i = 0; i < n; i++) {
		bool ok;

		t0 = rte_rdtsc();
		ok = ep_frame(b, f[i].m, f[i].from_vm, now);
		t1 = rte_rdtsc();
		if (t1 - t0 <= b->outlier_cyc) {
			b->a.kind_cyc[f[i].kind] +=
				t1 - t0 > b->rdtsc_cost ? t1 - t0 - b->rdtsc_cost : 0;
			b->a.kind_n[f[i].kind]++;
		} else {
			b->a.ep_out++;
		}
		if (unlikely(!ok)) {
			failf(b, &b->slots[f[i].slot], "the endpoint did not take a %s frame",
			      kind_names[f[i].kind]);
			rte_pktmbuf_free(f[i].m);
		}
	}
	t0 = rte_rdtsc();
	sp_tcp_poll(b->w, now);
	t1 = rte_rdtsc();
	if (t1 - t0 <= b->outlier_cyc) {
		b->a.poll_cyc += t1 - t0 > b->rdtsc_cost ? t1 - t0 - b->rdtsc_cost : 0;
		b->a.poll_n++;
	} else {
		b->a.ep_out++;
	}
	b->a.frames_in += n;
}

/* a - b, field by field (both are struct acc: uint64_t only) */
static struct acc
acc_sub(const struct acc *a, const struct acc *b)
{
	const uint64_t *pa = (const uint64_t *)a, *pb = (const uint64_t *)b;
	struct acc d;
	uint64_t *pd = (uint64_t *)&d;
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(uint64_t); i++)
		pd[i] = pa[i] - pb[i];
	return d;
}

/*
 * One pass: at least n transactions, conc at a time, and new ones for at least min_cyc TSC
 * cycles (--cache: n GETs; keep-alive: on conc connections, each closed when no more GETs are
 * to start). Each round every slot sends its next step's frames; the round's frames go through
 * in bursts (rx burst → endpoint → poll → take the tx buffers, as the worker's loop does), then
 * every slot checks what it got. Every seg_every transactions (0: never) a snapshot of b->a
 * goes to b->snap[] (b->snap[0]: the start).
 */
static void
run_pass(struct bench *b, uint64_t n, uint64_t min_cyc, uint64_t seg_every)
{
	static struct frame frames[2 * MAX_CONC];
	uint64_t started = 0, t_start, t0;
	unsigned int si, nf, off, k;
	bool stop = false, more_time;

	memset(&b->a, 0, sizeof(b->a));
	if (seg_every != 0) {
		b->snap[0] = b->a;
		b->n_snap = 1;
	}
	for (si = 0; si < b->conc; si++) {
		b->slots[si].step = S_IDLE;
		b->slots[si].delay = (uint8_t)(si % S_MAX); /* the slots' steps are mixed */
	}
	b->busy = 0;
	t_start = rte_rdtsc();
	while (b->failures == 0 && !(stop && b->busy == 0)) {
		t0 = rte_rdtsc();
		more_time = t0 - t_start < min_cyc;
		stop = started >= n && !more_time;
		nf = 0;
		for (si = 0; si < b->conc; si++) {
			struct txn *t = &b->slots[si];

			if (t->step == S_IDLE) {
				if (t->delay > 0) {
					t->delay--;
					continue;
				}
				if (started >= n && !more_time)
					continue;
				if (b->cache) {
					conn_start(b, si); /* and its first GET */
					get_start(b, si);
				} else {
					txn_start(b, si);
				}
				started++;
			} else if (b->cache && t->step == C_GET && !t->first && !b->new_conn) {
				/* keep-alive: the next GET, or the close when no more are due */
				if (started >= n && !more_time) {
					t->step = C_FIN;
				} else {
					get_start(b, si);
					started++;
				}
			}
			nf += b->cache ? gen_cstep(b, si, frames + nf)
				       : gen_step(b, si, frames + nf);
		}
		b->a.cyc_gen += rte_rdtsc() - t0;
		for (off = 0; off < nf; off += k) {
			k = RTE_MIN(b->burst, nf - off);
			if (b->with_ref)
				ref_burst(b, frames + off, k);
			ep_burst(b, frames + off, k);
			t0 = rte_rdtsc();
			harvest(b);
			b->a.cyc_check += rte_rdtsc() - t0;
		}
		t0 = rte_rdtsc();
		for (si = 0; si < b->conc && b->failures == 0; si++)
			if (b->slots[si].step != S_IDLE) {
				if (b->cache)
					end_cstep(b, si);
				else
					end_step(b, si);
			}
		b->a.cyc_check += rte_rdtsc() - t0;
		if (seg_every != 0 && b->n_snap <= MAX_SEGS && b->a.done >= b->n_snap * seg_every) {
			b->a.cyc_wall = rte_rdtsc() - t_start;
			b->snap[b->n_snap++] = b->a;
		}
	}
	b->a.cyc_wall = rte_rdtsc() - t_start;
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static int
conf_build(struct sp_conf *cfg, const char *prefix, unsigned int max_flows, bool cache, char *err,
	   size_t errlen)
{
	/* --cache: a cache (dp->cache) with room for the one object */
	static const char *const cache_kv[][3] = {
		{"cache", "size_kb", "1024"},
		{"cache", "max_object_kb", "64"},
		{"cache", "entries", "1024"},
		{"cache", "fills", "8"},
	};
	char flows[32];
	const char *kv[][3] = {
		{"eal", "file_prefix", prefix},
		{"eal", "no_huge", "true"},
		{"eal", "memory_mb", "512"},
		{"eal", "no_pci", "true"},
		{"eal", "telemetry", "false"},
		{"lcores", "main", "0"},
		{"lcores", "workers", "1"},
		{"port.vm0", "device", "net_null0"},
		{"port.vm0", "role", "vm"},
		{"port.vm0", "mac", "52:54:00:00:00:01"},
		{"port.uplink", "device", "net_null1"},
		{"port.uplink", "role", "uplink"},
		{"dataplane", "max_flows", flows},
	};
	unsigned int i;
	int rc;

	snprintf(flows, sizeof(flows), "%u", max_flows);
	sp_conf_defaults(cfg);
	for (i = 0; i < RTE_DIM(kv); i++) {
		rc = sp_conf_set(cfg, kv[i][0], kv[i][1], kv[i][2], err, errlen);
		if (rc != 0)
			return rc;
	}
	for (i = 0; cache && i < RTE_DIM(cache_kv); i++) {
		rc = sp_conf_set(cfg, cache_kv[i][0], cache_kv[i][1], cache_kv[i][2], err, errlen);
		if (rc != 0)
			return rc;
	}
	return sp_conf_finish(cfg, err, errlen);
}

/*
 * --cache: what a hit must answer, written here from the node's response as the service would
 * send it (not with the worker's template code): the status line, the node's header lines in
 * their order without Connection (Date and x-amz-request-id: fresh values, masked), with
 * --new-conn "Connection: close" last, the blank line, the body.
 */
static void
build_cached_response(struct bench *b)
{
	const char *p = strstr(resp_head, "\r\n") + 2, *eol;
	uint32_t o = 0;

	o += (uint32_t)snprintf(b->cresp, sizeof(b->cresp), "HTTP/1.1 200 OK\r\n");
	for (; (eol = strstr(p, "\r\n")) != p; p = eol + 2) {
		uint32_t len = (uint32_t)(eol + 2 - p);

		if (strncasecmp(p, "Connection:", 11) == 0)
			continue;
		if (strncasecmp(p, "Date: ", 6) == 0)
			b->date_off = o + 6;
		else if (strncasecmp(p, "x-amz-request-id: ", 18) == 0)
			b->reqid_off = o + 18;
		memcpy(b->cresp + o, p, len);
		o += len;
	}
	if (b->new_conn)
		o += (uint32_t)snprintf(b->cresp + o, sizeof(b->cresp) - o,
					"Connection: close\r\n");
	o += (uint32_t)snprintf(b->cresp + o, sizeof(b->cresp) - o, "\r\n");
	memcpy(b->cresp + o, b->resp + b->resp_len - OBJ_SIZE, OBJ_SIZE);
	b->cresp_len = o + OBJ_SIZE;
}

/*
 * --cache: the control thread's part, done here: the entry of /bench/obj built from the node's
 * response as control/sp_cache_ctl.c builds one from a fill (one rte_malloc block: the struct,
 * name, ETag, Last-Modified, Server, the head template, the body), valid for the object's
 * current version and the service's generation, fresh far into the future, put in the index.
 */
static int
cache_put(struct bench *b)
{
	struct sp_cache *c = b->dp->cache;
	uint32_t name_len = (uint32_t)strlen(obj_name), head_len = b->resp_len - OBJ_SIZE;
	struct sp_http_resp r;
	struct sp_cache_entry *e;
	struct sp_cache_key key = {0};
	int hl, err;

	if (c == NULL)
		return -ENOENT;
	hl = sp_http_parse_response(b->resp, head_len, head_len, &r);
	if (hl != (int)head_len || r.status != 200 || r.content_length != OBJ_SIZE)
		return -EINVAL;
	/* as the control thread makes an entry from a fill (control/sp_cache_ctl.c) */
	key.hash = sp_cache_hash(0, obj_name, name_len);
	e = sp_cache_entry_new(0, obj_name, name_len, key.hash, b->resp, &r, b->resp + head_len,
			       OBJ_SIZE, &err);
	if (e == NULL)
		return err;
	if (e->etag_len == 0 || e->lm_len == 0 || e->server_len == 0) {
		rte_free(e);
		return -EINVAL;
	}
	e->version = __atomic_load_n(&c->ver[e->ver_slot].ver, __ATOMIC_ACQUIRE);
	e->svc_gen = __atomic_load_n(&c->svc_gen[0], __ATOMIC_ACQUIRE);
	e->fresh_until_tsc = UINT64_MAX / 2;
	e->stale_until_tsc = UINT64_MAX / 2;
	if (rte_hash_add_key_data(c->index, &key, e) != 0) {
		rte_free(e);
		return -ENOSPC;
	}
	b->centry = e;
	return 0;
}

/* --cache: the entry out of the index and freed (nothing holds it: refcnt checked before). */
static void
cache_remove(struct bench *b)
{
	struct sp_cache_key key = {.hash = 0, .slot = 0, .zero = 0};
	int32_t pos;

	if (b->centry == NULL)
		return;
	key.hash = b->centry->key_hash;
	pos = rte_hash_del_key(b->dp->cache->index, &key);
	if (pos < 0)
		failf(b, NULL, "the cache entry was not in the index any more");
	else /* the index is lock-free: the position is freed by who deletes */
		rte_hash_free_key_with_position(b->dp->cache->index, pos);
	rte_free(b->centry);
	b->centry = NULL;
}

/* The request, the head the node must get (DESIGN 3.2: the node's path, the client's headers,
 * the node credential, Connection: close) and the response. */
static void
build_messages(struct bench *b, const char *cred)
{
	unsigned int i;
	int n, m;

	char date[17], auth[512];
	time_t now = time(NULL);
	struct tm tm;

	/* with --auth-first the worker checks the date (±15 min) and the scope: they are today's */
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
	n = snprintf(b->req, sizeof(b->req), "%s", req_line);
	m = snprintf(b->exp_head, sizeof(b->exp_head), "GET %s HTTP/1.1\r\n", node_path);
	for (i = 0; i < RTE_DIM(req_hdrs); i++) {
		const char *v = req_hdrs[i][1];

		if (b->auth_first && strcmp(req_hdrs[i][0], "X-Amz-Date") == 0) {
			v = date;
		} else if (b->auth_first && strcmp(req_hdrs[i][0], "Authorization") == 0) {
			/* "...Credential=AK/YYYYMMDD/...": the scope's date is today's */
			snprintf(auth, sizeof(auth), "%s", v);
			memcpy(strstr(auth, "/") + 1, date, 8);
			v = auth;
		}
		n += snprintf(b->req + n, sizeof(b->req) - (size_t)n, "%s: %s\r\n", req_hdrs[i][0],
			      v);
		m += snprintf(b->exp_head + m, sizeof(b->exp_head) - (size_t)m, "%s: %s\r\n",
			      req_hdrs[i][0], v);
	}
	if (b->new_conn) /* as wrk -H "Connection: close" asks nginx: the server closes */
		n += snprintf(b->req + n, sizeof(b->req) - (size_t)n, "Connection: close\r\n");
	n += snprintf(b->req + n, sizeof(b->req) - (size_t)n, "\r\n");
	m += snprintf(b->exp_head + m, sizeof(b->exp_head) - (size_t)m,
		      "X-SP-Node-Auth: %s\r\nConnection: close\r\n\r\n", cred);
	b->req_len = (uint32_t)n;
	b->exp_len = (uint32_t)m;
	b->head_segs = (b->exp_len + MSS - 1) / MSS;
	n = snprintf(b->resp, sizeof(b->resp), "%s", resp_head);
	for (i = 0; i < OBJ_SIZE; i++)
		b->resp[n + i] = (char)rnd32();
	b->resp_len = (uint32_t)n + OBJ_SIZE;
	if (b->cache)
		build_cached_response(b);
}

/* The control thread's way: a locator handed to the worker on its ring (as a prefetch). */
static int
give_locator(struct bench *b, const char *cred)
{
	struct sp_loc_msg *m;
	void *obj;

	if (rte_mempool_get(b->dp->loc_pool, &obj) != 0)
		return -ENOMEM;
	m = obj;
	memset(m, 0, sizeof(*m));
	m->kind = SP_LOC_PREFETCH;
	m->op = SP_LOC_OP_READ;
	m->status = SP_LOC_FOUND;
	m->n_nodes = 1;
	m->svc_slot = 0;
	m->node_ip[0] = rte_cpu_to_be_32(NODE_IP);
	m->node_port[0] = rte_cpu_to_be_16(SVC_PORT);
	m->ttl_ms = 3600 * 1000;
	m->cred_expires = (int64_t)time(NULL) + 3600;
	m->size = OBJ_SIZE;
	m->name_len = (uint16_t)strlen(obj_name);
	memcpy(m->name, obj_name, m->name_len);
	m->path_len = (uint16_t)strlen(node_path);
	memcpy(m->path, node_path, m->path_len);
	m->cred_len[SP_LOC_GET] = (uint8_t)strlen(cred);
	memcpy(m->cred[SP_LOC_GET], cred, m->cred_len[SP_LOC_GET]);
	if (rte_ring_enqueue(b->w->loc_ring, m) != 0) {
		rte_mempool_put(b->dp->loc_pool, m);
		return -ENOSPC;
	}
	sp_tcp_poll(b->w, rte_rdtsc());
	return SP_CNT_GET(b->w->stats.locators) == 1 ? 0 : -ENOENT;
}

static int
services(struct bench *b)
{
	struct sp_svc_profile direct = {.flags = SP_SVC_F_DIRECT,
					.methods = 1u << SP_LOC_GET,
					.auth = b->auth_first ? SP_AUTH_MODE_FIRST
							      : SP_AUTH_MODE_NONE,
					.region = "us-east-1"};
	struct sp_svc_profile plain = {.flags = 0, .methods = 0};
	uint32_t vip = rte_cpu_to_be_32(VIP);

	if (b->cache) { /* a year: nothing expires while tcp_bench runs */
		direct.cache = SP_CACHE_POLICY_TTL;
		direct.cache_ttl_s = 365 * 86400;
	}
	b->svc = sp_svc_table_new(1);
	b->svc_ref = sp_svc_table_new(1);
	if (b->svc == NULL || b->svc_ref == NULL ||
	    sp_svc_table_add(b->svc, false, (const uint8_t *)&vip, rte_cpu_to_be_16(SVC_PORT), 0,
			     &direct) != 0 ||
	    sp_svc_table_add(b->svc_ref, false, (const uint8_t *)&vip, rte_cpu_to_be_16(SVC_PORT),
			     0, &plain) != 0)
		return -ENOMEM;
	/* no worker runs: publishing is a plain store (sp_dp_destroy frees it) */
	b->dp->svc_table = b->svc;
	if (b->auth_first) {
		/* the verdict the control thread would have installed after a first request */
		static const char ak[] = "AKIAIOSFODNN7EXAMPLE";
		uint32_t h = sp_auth_verdict_hash(b->vm_idx, 0, ak, sizeof(ak) - 1);
		struct sp_auth_verdict *v = &b->w->tcp->verdicts[h & b->w->tcp->verdict_mask];

		v->expires_tsc = UINT64_MAX / 2;
		v->svc_epoch = b->svc->epoch;
		v->cred_gen = b->dp->auth_gen[sp_auth_gen_slot(0, ak, sizeof(ak) - 1)];
		v->hash = h;
		v->port_idx = b->vm_idx;
		v->slot = 0;
		v->ak_len = sizeof(ak) - 1;
		memcpy(v->ak, ak, sizeof(ak));
		v->policy.actions = SP_POLICY_ALL_ACTIONS;
		v->policy.all_buckets = 1;
	}
	return 0;
}

static uint64_t
rdtsc_cost(void)
{
	uint64_t best = UINT64_MAX, t0, t1;
	int i;

	for (i = 0; i < 10000; i++) {
		t0 = rte_rdtsc();
		t1 = rte_rdtsc();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best;
}

/* The share of the request head's parse in vm_get_head: the same head, parsed alone. */
static double
parse_cost(struct bench *b)
{
	static struct sp_http_req req;
	uint64_t best = UINT64_MAX, t0, t1;
	int i, rc = 0;

	for (i = 0; i < 20000; i++) {
		t0 = rte_rdtsc();
		sp_http_req_init(&req);
		rc |= sp_http_parse_request(b->req, b->req_len, &req, &b->w->tcp->lim) !=
		      (int)b->req_len;
		t1 = rte_rdtsc();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	if (rc != 0)
		failf(b, NULL, "the request head does not parse whole");
	return (double)(best - RTE_MIN(best, b->rdtsc_cost));
}

/*
 * After the last transaction: let every flow's TIME_WAIT run out (a clock 10 s ahead, one full
 * sweep of the flow table). After a failure, flows stuck elsewhere run through their timers
 * (the clock moves 100 ms per poll) until the table is empty.
 */
static void
drain(struct bench *b)
{
	uint64_t hz = rte_get_tsc_hz(), later = rte_rdtsc() + 10 * hz;
	uint32_t i, polls = (b->w->tcp->n_flows / 64 + 1) * (b->failures ? 40 : 1);
	unsigned int p;

	for (i = 0; i < polls && sp_tcp_active(b->w); i++) {
		sp_tcp_poll(b->w, b->failures ? later + i * (hz / 10) : later);
		for (p = 0; p < b->dp->n_ports; p++) {
			struct sp_txbuf *tb = &b->w->tx[p];

			if (tb->n > 0 && b->failures == 0)
				failf(b, NULL, "%u frames sent while TIME_WAIT flows ended", tb->n);
			rte_pktmbuf_free_bulk(tb->pkts, tb->n);
			tb->n = 0;
			tb->bytes = 0;
		}
	}
}

/* Remove this process's (empty) EAL runtime directory, /var/run/dpdk/PREFIX. */
static void
remove_runtime_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* ---- report ---------------------------------------------------------------------------------- */

/* --cache: what an event counter must be after gets GETs on conns connections. */
static uint64_t
cache_expect(const struct bench *b, unsigned int e, uint64_t gets, uint64_t conns)
{
	switch (e) {
	case SP_TCP_EV_SYN_RX:
	case SP_TCP_EV_SYNACK_TX:
	case SP_TCP_EV_COOKIE_OK:
	case SP_TCP_EV_FLOW_FREED:
		return conns;
	case SP_TCP_EV_REQUESTS:
	case SP_TCP_EV_CACHE_HIT:
	case SP_TCP_EV_CACHE_200:
		return gets;
	case SP_TCP_EV_AUTH_HIT:
		return b->auth_first ? gets : 0;
	case SP_TCP_EV_CACHE_KEEPALIVE: /* requests after a connection's first */
		return gets - conns;
	case SP_TCP_EV_CACHE_BYTES:
		return gets * OBJ_SIZE;
	case SP_TCP_EV_LOC_PREFETCHED:
		return 1;
	default:
		return 0;
	}
}

/*
 * The endpoint's non-zero event counters as a JSON object in json; with check, each against
 * what txns transactions (and the one locator) make, every other event must be 0. --cache: txns
 * GETs on b->conns connections.
 */
static void
counters(struct bench *b, uint64_t txns, bool check, char *json, size_t len)
{
	static const struct {
		enum sp_tcp_event e;
		uint8_t per_txn, fixed;
	} want[] = {
		{SP_TCP_EV_SYN_RX, 1, 0},     {SP_TCP_EV_SYNACK_TX, 1, 0},
		{SP_TCP_EV_COOKIE_OK, 1, 0},  {SP_TCP_EV_REQUESTS, 1, 0},
		{SP_TCP_EV_LOC_HIT, 1, 0},    {SP_TCP_EV_BIND_NODE, 1, 0},
		{SP_TCP_EV_BE_SYN_TX, 1, 0},  {SP_TCP_EV_SPLICED_VM, 2, 0},
		{SP_TCP_EV_SPLICED_BE, 3, 0}, {SP_TCP_EV_CLOSED, 1, 0},
		{SP_TCP_EV_FLOW_FREED, 1, 0}, {SP_TCP_EV_LOC_PREFETCHED, 0, 1},
		{SP_TCP_EV_AUTH_HIT, 1, 0},
	};
	const uint64_t *c = b->w->stats.tcp;
	unsigned int i, j;
	size_t o = 0;

	o += (size_t)snprintf(json, len, "{");
	for (i = 0; i < SP_TCP_EV_MAX; i++) {
		uint64_t expect = 0;

		for (j = 0; j < RTE_DIM(want) && !b->cache; j++)
			if (want[j].e == i && (want[j].e != SP_TCP_EV_AUTH_HIT || b->auth_first))
				expect = want[j].per_txn * txns + want[j].fixed;
		if (b->cache)
			expect = cache_expect(b, i, txns, b->conns);
		if (c[i] != 0 && o < len)
			o += (size_t)snprintf(json + o, len - o, "%s\"%s\": %" PRIu64,
					      o > 1 ? ", " : "", sp_tcp_event_name(i), c[i]);
		if (check && c[i] != expect)
			failf(b, NULL, "counter %s = %" PRIu64 ", want %" PRIu64,
			      sp_tcp_event_name(i), c[i], expect);
	}
	if (o < len)
		snprintf(json + o, len - o, "}");
}

static void
usage(FILE *f, const char *prog)
{
	static const char *const lines[] = {
		"  -n, --transactions N  measured transactions (default 200000; --quick: 2000)",
		"  -c, --concurrency N   transactions in flight (default 64, at most 1024)",
		"      --max-flows N     [dataplane] max_flows, a power of two up to 1048576",
		"                        (default 1048576): closed flows stay 1 s in TIME_WAIT, so",
		"                        it must hold 1 s of transactions at the closed loop's "
		"rate",
		"      --tuples N        distinct VM (address, port) pairs, cycled (default 64512 "
		"x",
		"                        256); up to 64512: one VM address; fewer than 1 s of",
		"                        transactions reuse ports whose flow is in TIME_WAIT",
		"      --quick           a smoke run: 2000 transactions, max_flows 65536",
		"      --auth-first      the service authenticates locally (auth first) and the",
		"                        VM's access key has a verdict: each request is parsed",
		"                        for its credentials, the verdict and policy checked",
		"      --cache           cache hits: the service caches (policy ttl), /bench/obj "
		"is",
		"                        in the cache and the worker answers every GET itself;",
		"                        keep-alive: -c connections, GET after GET on each (the",
		"                        next GET acknowledges the previous response), -n GETs",
		"                        (default 2000000); nothing may reach the uplink",
		"      --new-conn        with --cache: a new connection per GET (SYN, ACK, GET",
		"                        with Connection: close, the response and FIN, the VM's",
		"                        FIN; default -n 500000)",
	};
	unsigned int i;

	fprintf(f,
		"usage: %s [--quick] [-n N] [-c N] [--max-flows N] [--tuples N] [--auth-first]\n"
		"       [--cache [--new-conn]]\n",
		prog);
	for (i = 0; i < RTE_DIM(lines); i++)
		fprintf(f, "%s\n", lines[i]);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of n values (sorts v). */
static double
median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* What the measurement found: human-readable lines, then one JSON line. */
static void
report(struct bench *b, const struct acc *all, const struct acc *brk, const char *counters,
       const char *prefix)
{
	double hz = (double)rte_get_tsc_hz(), ep[MAX_SEGS], epf[MAX_SEGS], ref[2][MAX_SEGS];
	double fpt = (double)all->frames_in / (double)all->done, ep_cpt, ep_cpf, ref_cpf[2];
	double ep_min, ep_max, gen_cpt, chk_cpt, loop_tps, kind[K_MAX], poll, sum = 0;
	unsigned int n_seg = b->n_snap - 1, i, r;

	for (i = 0; i < n_seg; i++) {
		struct acc d = acc_sub(&b->snap[i + 1], &b->snap[i]);

		epf[i] = (double)d.cyc_ep / (double)d.ep_frames;
		ep[i] = epf[i] * (double)d.frames_in / (double)d.done;
		for (r = 0; r < 2; r++)
			ref[r][i] = (double)d.cyc_ref[r] / (double)d.ref_frames[r];
	}
	ep_cpt = median(ep, n_seg);
	ep_min = ep[0];
	ep_max = ep[n_seg - 1];
	ep_cpf = median(epf, n_seg);
	for (r = 0; r < 2; r++)
		ref_cpf[r] = median(ref[r], n_seg);
	gen_cpt = (double)all->cyc_gen / (double)all->done;
	chk_cpt = (double)all->cyc_check / (double)all->done;
	loop_tps = (double)all->done * hz / (double)all->cyc_wall;
	for (i = 0; i < K_MAX; i++) {
		kind[i] = brk->kind_n[i] ? (double)brk->kind_cyc[i] / (double)brk->kind_n[i] : 0;
		if (b->kind_mask & 1u << i)
			sum += kind[i];
	}
	poll = brk->poll_n ? (double)brk->poll_cyc / (double)brk->poll_n : 0;

	printf("endpoint: classify, service lookup, sp_tcp_from_vm / sp_tcp_from_uplink, "
	       "sp_tcp_poll once per burst\n(median of %u segments of %" PRIu64
	       " transactions; PMD rx/tx not included):\n",
	       n_seg, all->done / n_seg);
	printf("  %-40s %9.0f txn/s  %6.0f ns/txn  %6.0f cycles/txn  (segments %.0f..%.0f "
	       "txn/s)\n",
	       b->auth_first ? "direct 1 KiB GET, auth first (verdict)"
			     : "direct-to-storage 1 KiB GET",
	       hz / ep_cpt, ep_cpt * 1e9 / hz, ep_cpt, hz / ep_max, hz / ep_min);
	printf("  %-40s %9.0f cycles per frame in (%.2f in, %.2f out per transaction)\n", "",
	       ep_cpf, fpt, (double)all->frames_out / (double)all->done);
	printf("references, same run, copies of the same frames: byte-identical forwarding as "
	       "the worker does it\nfor a service that is not enhanced (classify, service lookup, "
	       "MAC cache, tx enqueue):\n");
	printf("  %-40s %9.1f cycles per frame  %6.0f cycles per transaction's frames\n",
	       "forwarding, no live flow", ref_cpf[0], ref_cpf[0] * fpt);
	printf("  %-40s %9.1f cycles per frame  %6.0f (+ the flow table lookup of every TCP "
	       "segment)\n",
	       "forwarding, while flows are live", ref_cpf[1], ref_cpf[1] * fpt);
	printf("  %-40s %9.1fx forwarding's cycles per frame (no live flow)\n", "the endpoint",
	       ep_cpf / ref_cpf[0]);
	printf("  left out (longer than %.0f us: preempted, the machine is shared): %" PRIu64
	       " of %" PRIu64 " endpoint bursts, %" PRIu64 " + %" PRIu64
	       " reference bursts;\n  %" PRIu64 " involuntary context switches\n",
	       (double)b->outlier_cyc * 1e6 / hz, all->ep_out, all->bursts, all->ref_out[0],
	       all->ref_out[1], b->nivcsw);
	printf("synthetic VM and storage node (not in the figures above):\n");
	printf("  %-40s %9.0f cycles/txn\n", "making the frames (alloc, headers, cksums)", gen_cpt);
	printf("  %-40s %9.0f cycles/txn\n", "taking, checking and freeing the output", chk_cpt);
	printf("  %-40s %9.0f txn/s (the whole program, references included)\n", "closed loop",
	       loop_tps);
	printf("by frame (a further %" PRIu64 " transactions, each call timed alone, less %" PRIu64
	       " cycles for rte_rdtsc):\n",
	       brk->done, b->rdtsc_cost);
	for (i = 0; i < K_MAX; i++) {
		if (!(b->kind_mask & 1u << i))
			continue;
		printf("  %-40s %9.0f cycles", kind_names[i], kind[i]);
		if (i == K_VM_GET)
			printf(", of which ~%.0f parse the head (sp_http_parse_request alone)",
			       b->parse_cyc);
		printf("\n");
	}
	printf("  %-40s %9.0f cycles per call, %.2f calls per transaction\n", "sp_tcp_poll", poll,
	       (double)brk->bursts / (double)brk->done);
	printf("  %-40s %9.0f cycles per transaction\n", "sum",
	       sum + poll * (double)brk->bursts / (double)brk->done);
	printf("checked: every frame's addresses, flags, seq and ack; the head the node got and "
	       "the response the VM got,\nbyte for byte; checksums of %" PRIu64
	       " frames (every frame of 1 transaction in %d); the endpoint's counters.\n"
	       "flows live after the measurement: %" PRIu64 " (closed, in TIME_WAIT for 1 s), "
	       "after TIME_WAIT: %" PRIu64 ".\nmbufs in use at the start: %" PRIu64
	       ", at the end: %" PRIu64 ".\n",
	       b->csum_frames, CSUM_EVERY, b->flows_after_run, SP_CNT_GET(b->w->stats.flows),
	       b->in_use_start, b->in_use_end);

	printf("{\"bench\": \"tcp_bench\", \"ok\": true, \"auth\": \"%s\", \"file_prefix\": "
	       "\"%s\", "
	       "\"transactions\": %" PRIu64 ", \"segments\": %u, \"concurrency\": %u, \"burst\": "
	       "%u, \"max_flows\": %u, \"frames_in_per_txn\": %.2f, \"frames_out_per_txn\": %.2f, "
	       "\"tsc_hz\": %.0f, ",
	       b->auth_first ? "first" : "none", prefix, all->done, n_seg, b->conc, b->burst,
	       b->max_flows, fpt, (double)all->frames_out / (double)all->done, hz);
	printf("\"endpoint\": {\"txn_per_s\": %.0f, \"txn_per_s_min\": %.0f, \"txn_per_s_max\": "
	       "%.0f, \"ns_per_txn\": %.1f, \"cycles_per_txn\": %.1f, \"cycles_per_frame_in\": "
	       "%.1f}, ",
	       hz / ep_cpt, hz / ep_max, hz / ep_min, ep_cpt * 1e9 / hz, ep_cpt, ep_cpf);
	printf("\"reference\": {\"what\": \"byte-identical forwarding of the same frames (service "
	       "not enhanced); no PMD rx/tx in either\", \"cycles_per_frame\": %.1f, "
	       "\"cycles_per_frame_flows_live\": %.1f}, \"endpoint_vs_reference_per_frame\": "
	       "%.2f, ",
	       ref_cpf[0], ref_cpf[1], ep_cpf / ref_cpf[0]);
	printf("\"harness\": {\"gen_cycles_per_txn\": %.1f, \"check_cycles_per_txn\": %.1f, "
	       "\"closed_loop_txn_per_s\": %.0f}, \"bursts\": %" PRIu64 ", \"bursts_left_out\": "
	       "%" PRIu64 ", \"reference_bursts_left_out\": %" PRIu64
	       ", \"involuntary_context_switches\": %" PRIu64 ", \"breakdown_cycles\": {",
	       gen_cpt, chk_cpt, loop_tps, all->bursts, all->ep_out,
	       all->ref_out[0] + all->ref_out[1], b->nivcsw);
	for (i = 0; i < K_MAX; i++)
		if (b->kind_mask & 1u << i)
			printf("\"%s\": %.1f, ", kind_names[i], kind[i]);
	printf("\"poll_per_call\": %.1f, \"polls_per_txn\": %.3f, \"http_parse_alone\": %.1f}, "
	       "\"checksummed_frames\": "
	       "%" PRIu64 ", \"flows_live_after_run\": %" PRIu64 ", \"flows_live_at_end\": %" PRIu64
	       ", \"mbufs_in_use_start\": %" PRIu64 ", \"mbufs_in_use_end\": %" PRIu64
	       ", \"mbufs_leaked\": %" PRId64 ", \"failures\": 0, \"counters\": %s}\n",
	       poll, (double)brk->bursts / (double)brk->done, b->parse_cyc, b->csum_frames,
	       b->flows_after_run, SP_CNT_GET(b->w->stats.flows), b->in_use_start, b->in_use_end,
	       (int64_t)(b->in_use_end - b->in_use_start), counters);
}

/*
 * --cache: what the measurement found, per GET: the endpoint's cycles (the median segment), the
 * frames in and out, cycles per packet (in + out), the references, the breakdown by frame.
 */
static void
report_cache(struct bench *b, const struct acc *all, const struct acc *brk, const char *counters,
	     const char *prefix)
{
	const char *mode = b->new_conn ? "new-connection" : "keep-alive";
	double hz = (double)rte_get_tsc_hz(), cpg[MAX_SEGS], cpf[MAX_SEGS], ref[2][MAX_SEGS];
	unsigned int n_seg = b->n_snap - 1, i, r;
	struct acc seg = acc_sub(&b->snap[n_seg], &b->snap[0]);
	double fin = (double)seg.frames_in / (double)seg.done;
	double fout = (double)seg.frames_out / (double)seg.done;
	double cpg_med, cpg_min, cpg_max, cpf_med, cpp, ref_cpf[2], gen, chk, loop, poll, sum;
	double per_get[K_MAX], kind[K_MAX];

	for (i = 0; i < n_seg; i++) {
		struct acc d = acc_sub(&b->snap[i + 1], &b->snap[i]);

		if (d.ep_frames == 0 || d.done == 0 || d.ref_frames[0] == 0 || d.ref_frames[1] == 0)
			d = seg; /* every burst of it left out (preempted): the whole measurement */
		cpf[i] = (double)d.cyc_ep / (double)d.ep_frames;
		cpg[i] = cpf[i] * (double)d.frames_in / (double)d.done;
		for (r = 0; r < 2; r++)
			ref[r][i] = (double)d.cyc_ref[r] / (double)d.ref_frames[r];
	}
	cpf_med = median(cpf, n_seg);
	for (r = 0; r < 2; r++)
		ref_cpf[r] = median(ref[r], n_seg);
	cpg_med = median(cpg, n_seg); /* sorts cpg: [0] is the fastest segment */
	cpg_min = cpg[0];
	cpg_max = cpg[n_seg - 1];
	cpp = cpg_med / (fin + fout);
	gen = (double)all->cyc_gen / (double)all->done;
	chk = (double)all->cyc_check / (double)all->done;
	loop = (double)all->done * hz / (double)all->cyc_wall;
	poll = brk->poll_n ? (double)brk->poll_cyc / (double)brk->poll_n : 0;
	sum = poll * (double)brk->bursts / (double)brk->done;
	for (i = 0; i < K_MAX; i++) {
		kind[i] = brk->kind_n[i] ? (double)brk->kind_cyc[i] / (double)brk->kind_n[i] : 0;
		per_get[i] = (double)brk->kind_n[i] / (double)brk->done;
		if (b->kind_mask & 1u << i)
			sum += kind[i] * per_get[i];
	}

	printf("endpoint: classify, service lookup, sp_tcp_from_vm, sp_tcp_poll once per burst\n"
	       "(median of %u segments of %" PRIu64 " GETs; PMD rx/tx not included):\n",
	       n_seg, seg.done / n_seg);
	printf("  %-40s %9.0f GETs/s  %6.0f ns/GET  %6.0f cycles/GET  (segments %.0f..%.0f "
	       "GETs/s)\n",
	       b->new_conn ? "cached 1 KiB GET, new connection each"
			   : "cached 1 KiB GET, keep-alive",
	       hz / cpg_med, cpg_med * 1e9 / hz, cpg_med, hz / cpg_max, hz / cpg_min);
	printf("  %-40s %9.2f frames in + %.2f out per GET: %.0f cycles per packet (in + out), "
	       "%.0f per frame in\n",
	       "", fin, fout, cpp, cpf_med);
	printf("references, same run, copies of the VM's frames: byte-identical forwarding as the "
	       "worker does it\nfor a service that is not enhanced (classify, service lookup, tx "
	       "enqueue):\n");
	printf("  %-40s %9.1f cycles per frame\n", "forwarding, no live flow", ref_cpf[0]);
	printf("  %-40s %9.1f cycles per frame (+ the flow table lookup)\n",
	       "forwarding, while flows are live", ref_cpf[1]);
	printf("  %-40s %9.1fx forwarding's cycles per frame (no live flow)\n",
	       "the hit path per packet (in + out)", cpp / ref_cpf[0]);
	printf("  left out (longer than %.0f us: preempted, the machine is shared): %" PRIu64
	       " of %" PRIu64 " endpoint bursts, %" PRIu64 " + %" PRIu64
	       " reference bursts;\n  %" PRIu64 " involuntary context switches\n",
	       (double)b->outlier_cyc * 1e6 / hz, all->ep_out, all->bursts, all->ref_out[0],
	       all->ref_out[1], b->nivcsw);
	printf("synthetic VM (not in the figures above):\n");
	printf("  %-40s %9.0f cycles/GET\n", "making the frames (alloc, headers, cksums)", gen);
	printf("  %-40s %9.0f cycles/GET\n", "taking, checking and freeing the output", chk);
	printf("  %-40s %9.0f GETs/s (the whole program, references included)\n", "closed loop",
	       loop);
	printf("by frame (a further %" PRIu64 " GETs, each call timed alone, less %" PRIu64
	       " cycles for rte_rdtsc):\n",
	       brk->done, b->rdtsc_cost);
	for (i = 0; i < K_MAX; i++) {
		if (!(b->kind_mask & 1u << i))
			continue;
		printf("  %-40s %9.0f cycles, %.3f per GET", kind_names[i], kind[i], per_get[i]);
		if (i == K_VM_GET)
			printf(", of which ~%.0f parse the head (sp_http_parse_request alone)",
			       b->parse_cyc);
		printf("\n");
	}
	printf("  %-40s %9.0f cycles per call, %.2f calls per GET\n", "sp_tcp_poll", poll,
	       (double)brk->bursts / (double)brk->done);
	printf("  %-40s %9.0f cycles per GET\n", "sum", sum);
	printf("checked: every frame's addresses, flags, seq and ack; every response (%" PRIu64
	       ") byte for byte against the\nobject's (head and body; Date and x-amz-request-id "
	       "well-formed in %" PRIu64 "); checksums of %" PRIu64
	       " frames (every frame of 1 GET in %d);\nnothing to the uplink; the endpoint's "
	       "counters (cache_hit = GETs); the entry's hits %" PRIu64 ", refcnt 0.\n"
	       "connections: %" PRIu64 " (%.1f GETs each); flows live at the end: %" PRIu64
	       "; mbufs in use at the start: %" PRIu64 ", at the end: %" PRIu64 ".\n",
	       b->resp_checked, b->ids_checked, b->csum_frames, CSUM_EVERY, b->centry->hits,
	       b->conns, (double)b->resp_checked / (double)b->conns, SP_CNT_GET(b->w->stats.flows),
	       b->in_use_start, b->in_use_end);

	printf("{\"bench\": \"tcp_bench\", \"ok\": true, \"mode\": \"%s\", \"auth\": \"%s\", "
	       "\"file_prefix\": \"%s\", \"gets\": %" PRIu64 ", \"connections\": %" PRIu64
	       ", \"segments\": %u, \"concurrency\": %u, \"burst\": %u, \"max_flows\": %u, "
	       "\"tsc_hz\": %.0f, ",
	       mode, b->auth_first ? "first" : "none", prefix, b->resp_checked, b->conns, n_seg,
	       b->conc, b->burst, b->max_flows, hz);
	printf("\"gets_per_s\": %.0f, \"gets_per_s_min\": %.0f, \"gets_per_s_max\": %.0f, "
	       "\"ns_per_get\": %.1f, \"cycles_per_get\": %.1f, \"frames_in_per_get\": %.3f, "
	       "\"frames_out_per_get\": %.3f, \"frames_per_get\": %.3f, \"cycles_per_packet\": "
	       "%.1f, \"cycles_per_frame_in\": %.1f, ",
	       hz / cpg_med, hz / cpg_max, hz / cpg_min, cpg_med * 1e9 / hz, cpg_med, fin, fout,
	       fin + fout, cpp, cpf_med);
	printf("\"reference\": {\"what\": \"byte-identical forwarding of the VM's frames "
	       "(service not enhanced); no PMD rx/tx in either\", \"cycles_per_frame\": %.1f, "
	       "\"cycles_per_frame_flows_live\": %.1f}, \"packet_vs_reference_frame\": %.2f, ",
	       ref_cpf[0], ref_cpf[1], cpp / ref_cpf[0]);
	printf("\"harness\": {\"gen_cycles_per_get\": %.1f, \"check_cycles_per_get\": %.1f, "
	       "\"closed_loop_gets_per_s\": %.0f}, \"bursts\": %" PRIu64
	       ", \"bursts_left_out\": %" PRIu64 ", \"reference_bursts_left_out\": %" PRIu64
	       ", \"involuntary_context_switches\": %" PRIu64 ", \"breakdown_cycles\": {",
	       gen, chk, loop, all->bursts, all->ep_out, all->ref_out[0] + all->ref_out[1],
	       b->nivcsw);
	for (i = 0; i < K_MAX; i++)
		if (b->kind_mask & 1u << i)
			printf("\"%s\": %.1f, ", kind_names[i], kind[i]);
	printf("\"poll_per_call\": %.1f, \"polls_per_get\": %.3f, \"sum_per_get\": %.1f, "
	       "\"http_parse_alone\": %.1f}, \"responses_checked\": %" PRIu64
	       ", \"ids_checked\": %" PRIu64 ", \"checksummed_frames\": %" PRIu64
	       ", \"entry_hits\": %" PRIu64
	       ", \"uplink_frames\": 0, \"flows_live_at_end\": %" PRIu64
	       ", \"mbufs_in_use_start\": %" PRIu64 ", \"mbufs_in_use_end\": %" PRIu64
	       ", \"mbufs_leaked\": %" PRId64 ", \"failures\": 0, \"counters\": %s}\n",
	       poll, (double)brk->bursts / (double)brk->done, sum, b->parse_cyc, b->resp_checked,
	       b->ids_checked, b->csum_frames, b->centry->hits, SP_CNT_GET(b->w->stats.flows),
	       b->in_use_start, b->in_use_end, (int64_t)(b->in_use_end - b->in_use_start),
	       counters);
}

/* The EAL's arguments: two lcores (0 runs everything, 1 is the worker the config needs and
 * never runs), anonymous memory, two null ports, this process's own runtime directory. */
static int
eal_init(const char *prog, const char *prefix)
{
	static char args[512];
	char *argv[32], *tok, *save = NULL;
	int argc = 0;

	snprintf(args, sizeof(args),
		 "-l 0-1 --main-lcore 0 --no-huge -m 512 --no-pci --no-telemetry "
		 "--vdev net_null0 --vdev net_null1 --log-level warning --file-prefix %s",
		 prefix);
	argv[argc++] = (char *)(uintptr_t)prog;
	for (tok = strtok_r(args, " ", &save); tok != NULL && argc < 31;
	     tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	return rte_eal_init(argc, argv);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {{"quick", no_argument, NULL, 'q'},
					      {"transactions", required_argument, NULL, 'n'},
					      {"concurrency", required_argument, NULL, 'c'},
					      {"max-flows", required_argument, NULL, 'f'},
					      {"tuples", required_argument, NULL, 't'},
					      {"auth-first", no_argument, NULL, 'a'},
					      {"cache", no_argument, NULL, 'C'},
					      {"new-conn", no_argument, NULL, 'N'},
					      {"help", no_argument, NULL, 'h'},
					      {NULL, 0, NULL, 0}};
	static struct sp_conf cfg;
	static struct bench bench;
	struct bench *b = &bench;
	char prefix[64], rundir[512], err[SP_CONF_ERR_LEN], cnt[4096], cred[SP_LOC_CRED_MAX];
	uint64_t n_txn = 200000, total = 0, fbufs, hz, live_at_failure;
	unsigned long v;
	int opt, rc = 1;
	bool quick = false, have_n = false, failed;
	struct rusage ru0, ru1;
	struct acc all, brk;

	b->conc = 64;
	b->max_flows = 1048576;
	b->tuples = PORTS_PER_IP * 256;
	while ((opt = getopt_long(argc, argv, "n:c:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'a':
			b->auth_first = true;
			break;
		case 'C':
			b->cache = true;
			break;
		case 'N':
			b->new_conn = true;
			break;
		case 'n':
			v = strtoul(optarg, NULL, 10);
			if (v < MAX_SEGS) {
				usage(stderr, argv[0]);
				return 2;
			}
			n_txn = v;
			have_n = true;
			break;
		case 'c':
			v = strtoul(optarg, NULL, 10);
			if (v == 0 || v > MAX_CONC) {
				usage(stderr, argv[0]);
				return 2;
			}
			b->conc = (unsigned int)v;
			break;
		case 't':
			v = strtoul(optarg, NULL, 10);
			if (v < MAX_CONC || v > PORTS_PER_IP * 65000ul) {
				usage(stderr, argv[0]);
				return 2;
			}
			b->tuples = (uint32_t)v;
			break;
		case 'f':
			v = strtoul(optarg, NULL, 10);
			if (v > 1048576) { /* what -m 512 holds */
				usage(stderr, argv[0]);
				return 2;
			}
			b->max_flows = (unsigned int)v;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc || (b->new_conn && !b->cache)) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (b->cache && !have_n)
		n_txn = b->new_conn ? 500000 : 2000000;
	if (quick && !have_n)
		n_txn = 2000;
	b->kind_mask = b->cache ? 1u << K_VM_SYN | 1u << K_VM_ACK | 1u << K_VM_GET |
					  1u << K_VM_FIN | (b->new_conn ? 0 : 1u << K_VM_LAST_ACK)
				: (1u << K_MAX) - 1 - (1u << K_VM_LAST_ACK);
	if (quick && b->max_flows == 1048576)
		b->max_flows = 65536;

	snprintf(prefix, sizeof(prefix), "sp-tcpbench-%d", (int)getpid());
	if (eal_init(argv[0], prefix) < 0) {
		fprintf(stderr, "tcp_bench: rte_eal_init failed (needs root and lcores 0-1)\n");
		remove_runtime_dir(rte_eal_get_runtime_dir());
		return 1;
	}
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	sp_log_init();
	hz = rte_get_tsc_hz();
	if (conf_build(&cfg, prefix, b->max_flows, b->cache, err, sizeof(err)) != 0 ||
	    sp_dp_create(&cfg, &b->dp, err, sizeof(err)) != 0) {
		fprintf(stderr, "tcp_bench: %s\n", err);
		goto out;
	}
	/* --no-huge memory is faulted in on first touch: lock it in now, as hugepages would be */
	if (mlockall(MCL_CURRENT) != 0)
		fprintf(stderr,
			"tcp_bench: mlockall failed (%s): first touches of the flow table are in "
			"the figures\n",
			strerror(errno));
	b->w = b->dp->workers[0];
	b->vm_idx = b->dp->vm_idx[0];
	b->up_idx = b->dp->uplink_idx;
	b->burst = RTE_MIN((unsigned int)cfg.burst, 64u);
	snprintf(cred, sizeof(cred), "nodemgr:%" PRId64 ":%s", (int64_t)time(NULL) + 3600,
		 "9c1185a5c5e9fc54612808977ee8f548b2258d31ae5a4f1e7f0c9d8b2a3c4e5f");
	build_messages(b, cred);
	if (services(b) != 0 || give_locator(b, cred) != 0) {
		fprintf(stderr, "tcp_bench: cannot set up the service and its locator\n");
		goto out;
	}
	if (b->cache && (rc = cache_put(b)) != 0) {
		fprintf(stderr, "tcp_bench: cannot put the object in the cache: %s\n",
			strerror(-rc));
		rc = 1;
		goto out;
	}
	b->rdtsc_cost = rdtsc_cost();
	b->outlier_cyc = hz / 10000; /* 100 us: a burst of 32 takes 10 to 30 */
	if (b->cache)		     /* a burst of 32 GETs makes 64 frames of up to 1.4 KB: 1 ms */
		b->outlier_cyc = hz / 1000;
	b->parse_cyc = parse_cost(b);
	b->in_use_start = sp_dp_pool_in_use(b->dp);

	if (b->cache) {
		printf("tcp_bench: cached GETs of a %d B object answered by the worker's TCP "
		       "endpoint (%s), one core, in process\n",
		       OBJ_SIZE, b->new_conn ? "a new connection per GET" : "keep-alive");
		printf("  VM: awscli GET head of %u B%s; the answer: %u B head + %d B body from "
		       "the cache;\n  %u %s in flight, bursts of %u, TSC %.2f GHz, max_flows %u\n",
		       b->req_len, b->new_conn ? " (Connection: close)" : "",
		       b->cresp_len - OBJ_SIZE, OBJ_SIZE, b->conc,
		       b->new_conn ? "connections (one GET each)" : "keep-alive connections",
		       b->burst, (double)hz / 1e9, b->max_flows);
	} else {
		printf("tcp_bench: direct-to-storage GETs of a %d B object through the worker's "
		       "TCP endpoint, one core, in process\n",
		       OBJ_SIZE);
		printf("  VM: awscli GET head of %u B; storage node: %u B response head + %d B "
		       "body + FIN;\n  %u transactions in flight, bursts of %u, TSC %.2f GHz, "
		       "max_flows %u\n",
		       b->req_len, b->resp_len - OBJ_SIZE, OBJ_SIZE, b->conc, b->burst,
		       (double)hz / 1e9, b->max_flows);
	}
	fflush(stdout);

	/*
	 * Warm-up (checked, not reported): at least 2.5 s, so that the flows closed in it fill
	 * TIME_WAIT (1 s) as they do at this rate (--cache: 0.5 s; no flow of it ends in
	 * TIME_WAIT). Then the measurement in segments, then the per-frame breakdown.
	 */
	b->with_ref = true;
	run_pass(b, RTE_MAX(n_txn / 10, (uint64_t)b->conc),
		 quick	    ? 0
		 : b->cache ? hz / 2
			    : hz * 5 / 2,
		 0);
	total += b->a.done;
	if (b->failures == 0) {
		getrusage(RUSAGE_THREAD, &ru0);
		run_pass(b, n_txn, 0, n_txn / MAX_SEGS);
		getrusage(RUSAGE_THREAD, &ru1);
		b->nivcsw = (uint64_t)(ru1.ru_nivcsw - ru0.ru_nivcsw);
		total += b->a.done;
	}
	all = b->a;
	b->flows_after_run = SP_CNT_GET(b->w->stats.flows);
	if (b->failures == 0) {
		b->with_ref = false;
		b->per_frame = true;
		run_pass(b, RTE_MAX(n_txn / 4, (uint64_t)b->conc), 0, 0);
		total += b->a.done;
	}
	brk = b->a;
	failed = b->failures != 0;
	live_at_failure = SP_CNT_GET(b->w->stats.flows);
	if (failed) /* the counters as the failure left them, before drain() moves the clock */
		counters(b, total, false, cnt, sizeof(cnt));
	drain(b);
	fbufs = SP_CNT_GET(b->w->stats.flow_buffers);
	b->in_use_end = sp_dp_pool_in_use(b->dp);
	if (!failed)
		counters(b, total, true, cnt, sizeof(cnt));
	if (SP_CNT_GET(b->w->stats.flows) != 0)
		failf(b, NULL, "%" PRIu64 " flows still live after every TIME_WAIT ran out",
		      SP_CNT_GET(b->w->stats.flows));
	if (fbufs != 0 || rte_mempool_in_use_count(b->w->tcp->bufs) != 0)
		failf(b, NULL, "request buffers in use at the end: %" PRIu64, fbufs);
	if (b->in_use_end != b->in_use_start)
		failf(b, NULL,
		      "packet pool: %" PRIu64 " mbufs in use at the start, %" PRIu64 " at the end",
		      b->in_use_start, b->in_use_end);
	if (b->cache && !failed &&
	    (b->resp_checked != total || b->centry->hits != total ||
	     __atomic_load_n(&b->centry->refcnt, __ATOMIC_ACQUIRE) != 0))
		failf(b, NULL,
		      "%" PRIu64 " GETs, %" PRIu64 " responses checked, the entry counted %" PRIu64
		      " hits and is still held %u times",
		      total, b->resp_checked, b->centry->hits, b->centry->refcnt);
	if (b->failures != 0 || b->n_snap < 2) {
		fprintf(stderr, "tcp_bench: %" PRIu64 " failures\n", b->failures);
		if (SP_CNT_GET(b->w->stats.tcp[SP_TCP_EV_FLOWS_FULL]) != 0)
			fprintf(stderr,
				"tcp_bench: flows_full with %" PRIu64 " flows live of %u: closed "
				"flows stay 2 s in TIME_WAIT, raise --max-flows\n",
				live_at_failure, b->max_flows);
		printf("{\"bench\": \"tcp_bench\", \"ok\": false, \"mode\": \"%s\", "
		       "\"failures\": %" PRIu64 ", \"file_prefix\": \"%s\", \"counters\": %s}\n",
		       !b->cache     ? "direct"
		       : b->new_conn ? "new-connection"
				     : "keep-alive",
		       b->failures, prefix, cnt);
		goto out;
	}
	if (b->cache)
		report_cache(b, &all, &brk, cnt, prefix);
	else
		report(b, &all, &brk, cnt, prefix);
	rc = 0;
out:
	fflush(stdout);
	if (b->dp != NULL) {
		cache_remove(b);
		sp_dp_destroy(b->dp);
	}
	free(b->svc_ref);
	rte_eal_cleanup();
	remove_runtime_dir(rundir);
	return rc;
}
