/*
 * DNS replies into the addresses their question resolves to. Two walks of the answer
 * section: the first checks every record and notes the CNAMEs (at most DNS_MAX_CNAMES), the
 * chain is then followed among those, and the second walk collects the A and AAAA records
 * owned by a name of the chain. Records may come in any order, so one walk cannot decide.
 *
 * Work is bounded by the message: a name is at most 127 labels and 127 compression hops,
 * and each record's owner is walked twice (checked, then looked up in the chain unless the
 * previous owner had the same labels). A hostile 64 KiB message of 255-byte owners costs
 * about 2.5 ms of CPU; a typical reply under 1 us.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "message.h"
#include "moat/hash.h"

#define HDR_LEN 12
#define FLAG_QR 0x8000
#define FLAG_TC 0x0200
#define NAME_WIRE_MAX 255
#define LABEL_MAX 63
#define HOPS_MAX 127
#define TTL_MAX 0x7fffffffu	/* RFC 2181 8: a TTL with the top bit set means 0 */
#define ADDR_SLOTS 128		/* the addresses kept, hashed (twice DNS_MAX_ANSWERS) */

/* The address records, by type: their family and the size of their data (class IN). */
static const struct {
	uint16_t type;
	uint8_t family;
	uint8_t size;
} addr_types[] = {
	{ DNS_TYPE_A, AF_INET, 4 },
	{ DNS_TYPE_AAAA, AF_INET6, 16 },
};

/* One resource record's fixed part, with offsets into the message. */
struct rr {
	size_t owner;		/* where its owner name starts */
	uint16_t type, class;
	uint32_t ttl;
	size_t rdata;
	uint16_t rdlen;
};

struct cname {
	uint32_t hash;		/* of the owner's text */
	size_t owner, target;	/* offsets of the names */
	uint32_t ttl;
};

/* The scratch of one parse: the CNAMEs seen, then the chain followed from the question. */
struct scan {
	struct cname c[DNS_MAX_CNAMES];
	size_t nc;
	char name[DNS_MAX_CHAIN][DNS_NAME_MAX];
	uint32_t hash[DNS_MAX_CHAIN];
	uint32_t ttl[DNS_MAX_CHAIN];	/* min TTL of the CNAMEs leading to name[i] */
	size_t n;
	size_t memo_off;		/* the last owner's labels looked up in the chain, */
	int memo_at;			/* and where it is there (-1: not) */
	uint8_t slot[ADDR_SLOTS];	/* 1 + index of an address in the reply; 0: free */
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Seeded: a rogue resolver chooses the names and addresses of its replies. */
static uint32_t bytes_hash(const void *p, size_t n)
{
	return (uint32_t)moat_hash_fin(moat_hash_bytes(MOAT_HASH_BASIS ^ moat_hash_seed(), p, n));
}

static uint32_t name_hash(const char *s)
{
	return bytes_hash(s, strlen(s));
}

/* Appends one label to text at *t (NULL: only checks it), lowercase; a '.' or NUL inside
 * it would make its text read as another name. */
static int label_copy(const uint8_t *l, size_t n, char *text, size_t *t)
{
	if (text && *t)
		text[(*t)++] = '.';
	for (size_t i = 0; i < n; i++) {
		uint8_t c = l[i];

		if (c == '.' || !c)
			return -EINVAL;
		if (text)
			text[(*t)++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return 0;
}

/*
 * A compression pointer at m[off]: where it leads, which must be before run, the start of
 * the labels being read (so each hop goes strictly backwards and no pointer can loop).
 */
static int pointer_follow(const uint8_t *m, size_t len, size_t off, size_t run, size_t *to)
{
	if (len - off < 2)
		return -EINVAL;
	*to = (size_t)(m[off] & 0x3f) << 8 | m[off + 1];
	return *to < run ? 0 : -EINVAL;
}

/*
 * The name at m[off]: its text into text (DNS_NAME_MAX bytes; NULL to only check it), and
 * in *next the offset just after it where it is written (after its first pointer, if any).
 */
static int name_read(const uint8_t *m, size_t len, size_t off, char *text, size_t *next)
{
	size_t run = off, wire = 0, t = 0, hops = 0, end = 0, n;

	for (;;) {
		if (off >= len)
			return -EINVAL;
		n = m[off];
		if ((n & 0xc0) == 0xc0) {
			if (++hops > HOPS_MAX || pointer_follow(m, len, off, run, &run))
				return -EINVAL;
			end = end ? end : off + 2;	/* the name is written up to its first pointer */
			off = run;
			continue;
		}
		wire += 1 + n;
		if (n > LABEL_MAX || wire > NAME_WIRE_MAX || len - off - 1 < n)
			return -EINVAL;
		if (!n)
			break;
		if (label_copy(m + off + 1, n, text, &t))
			return -EINVAL;
		off += 1 + n;
	}
	if (text)
		text[t] = '\0';
	*next = end ? end : off + 1;
	return 0;
}

/* The family of an address record's type (0 for another type), and its data's size. */
static uint8_t addr_family(uint16_t type, size_t *size)
{
	for (size_t i = 0; i < sizeof(addr_types) / sizeof(addr_types[0]); i++)
		if (addr_types[i].type == type) {
			*size = addr_types[i].size;
			return addr_types[i].family;
		}
	return 0;
}

static int rr_check(const uint8_t *m, size_t len, const struct rr *rr)
{
	size_t end, size;

	if (rr->type == DNS_TYPE_CNAME)
		return name_read(m, len, rr->rdata, NULL, &end) || end != rr->rdata + rr->rdlen ?
		       -EINVAL : 0;
	if (rr->class == DNS_CLASS_IN && addr_family(rr->type, &size) && rr->rdlen != size)
		return -EINVAL;
	return 0;
}

/* The record at *off, checked; *off moves past it. */
static int rr_read(const uint8_t *m, size_t len, size_t *off, struct rr *rr)
{
	size_t p;

	rr->owner = *off;
	if (name_read(m, len, *off, NULL, &p) || len - p < 10)
		return -EINVAL;
	rr->type = get16(m + p);
	rr->class = get16(m + p + 2);
	rr->ttl = get32(m + p + 4);
	rr->ttl = rr->ttl > TTL_MAX ? 0 : rr->ttl;
	rr->rdlen = get16(m + p + 8);
	rr->rdata = p + 10;
	if (rr->rdlen > len - rr->rdata)
		return -EINVAL;
	*off = rr->rdata + rr->rdlen;
	return rr_check(m, len, rr);
}

static int cname_note(const uint8_t *m, size_t len, const struct rr *rr, struct scan *s)
{
	char owner[DNS_NAME_MAX];
	size_t end;

	if (s->nc == DNS_MAX_CNAMES || name_read(m, len, rr->owner, owner, &end))
		return -EINVAL;
	s->c[s->nc++] = (struct cname){ name_hash(owner), rr->owner, rr->rdata, rr->ttl };
	return 0;
}

/* First walk: every record of the answer section is well formed; the CNAMEs noted (from
 * none: s is the caller's, uninitialised). */
static int answers_check(const uint8_t *m, size_t len, size_t off, unsigned an, struct scan *s)
{
	struct rr rr;

	s->nc = 0;
	for (unsigned i = 0; i < an; i++) {
		if (rr_read(m, len, &off, &rr))
			return -EINVAL;
		if (rr.type == DNS_TYPE_CNAME && rr.class == DNS_CLASS_IN &&
		    cname_note(m, len, &rr, s))
			return -EINVAL;
	}
	return 0;
}

/* Which name of the chain is text (with hash h), or -1. */
static int chain_find(const struct scan *s, const char *text, uint32_t h)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->hash[i] == h && !strcmp(s->name[i], text))
			return (int)i;
	return -1;
}

/* The first CNAME owned by the chain's last name, or NULL. */
static const struct cname *cname_of_last(const uint8_t *m, size_t len, const struct scan *s)
{
	char owner[DNS_NAME_MAX];
	size_t end, last = s->n - 1;

	for (size_t i = 0; i < s->nc; i++)
		if (s->c[i].hash == s->hash[last] &&
		    !name_read(m, len, s->c[i].owner, owner, &end) && !strcmp(owner, s->name[last]))
			return &s->c[i];
	return NULL;
}

/* Follows the CNAMEs from the question's name (s->name[0]) until a name has none, the
 * chain is full, or it loops. */
static void chain_follow(const uint8_t *m, size_t len, struct scan *s)
{
	const struct cname *c;
	size_t end;

	while (s->n < DNS_MAX_CHAIN && (c = cname_of_last(m, len, s))) {
		char *next = s->name[s->n];

		if (name_read(m, len, c->target, next, &end))
			return;		/* cannot happen: answers_check read it */
		s->hash[s->n] = name_hash(next);
		if (chain_find(s, next, s->hash[s->n]) >= 0)
			return;
		s->ttl[s->n] = c->ttl < s->ttl[s->n - 1] ? c->ttl : s->ttl[s->n - 1];
		s->n++;
	}
}

/* Keeps a once (found by its hash among what is kept), with its largest TTL. */
static void answer_add(struct dns_reply *r, struct scan *s, const struct moat_addr *a,
		       uint32_t ttl)
{
	size_t i = bytes_hash(a, sizeof(*a)) % ADDR_SLOTS;

	for (; s->slot[i]; i = (i + 1) % ADDR_SLOTS) {
		struct dns_answer *v = &r->v[s->slot[i] - 1];

		if (!moat_addr_cmp(&v->addr, a)) {
			v->ttl = ttl > v->ttl ? ttl : v->ttl;
			return;
		}
	}
	if (r->n == DNS_MAX_ANSWERS) {
		r->dropped++;
		return;
	}
	r->v[r->n++] = (struct dns_answer){ *a, ttl };
	s->slot[i] = (uint8_t)r->n;
}

/* Where the labels of a name checked already begin, past the pointers it starts with:
 * owners are mostly a pointer to the same few names. */
static size_t labels_start(const uint8_t *m, size_t off)
{
	while ((m[off] & 0xc0) == 0xc0)
		off = (size_t)(m[off] & 0x3f) << 8 | m[off + 1];
	return off;
}

/* Where owner is in the chain (-1: not), remembered for the next owner of those labels. */
static int chain_of_owner(const uint8_t *m, size_t len, size_t owner, struct scan *s)
{
	char text[DNS_NAME_MAX];
	size_t start = labels_start(m, owner), end;

	if (start != s->memo_off) {
		s->memo_off = start;
		s->memo_at = name_read(m, len, owner, text, &end) ? -1 :
			     chain_find(s, text, name_hash(text));
	}
	return s->memo_at;
}

/* An A or AAAA record of class IN owned by a name of the chain: its address is learned. */
static void address_take(const uint8_t *m, size_t len, const struct rr *rr, struct scan *s,
			 struct dns_reply *r)
{
	struct moat_addr a;
	size_t size;
	int at;

	memset(&a, 0, sizeof(a));	/* hashed and compared whole */
	a.family = addr_family(rr->type, &size);
	if (!a.family || rr->class != DNS_CLASS_IN ||
	    (at = chain_of_owner(m, len, rr->owner, s)) < 0)
		return;
	memcpy(a.a, m + rr->rdata, rr->rdlen);
	answer_add(r, s, &a, rr->ttl < s->ttl[at] ? rr->ttl : s->ttl[at]);
}

/* Second walk (the section is known good): the chain's addresses. */
static void answers_collect(const uint8_t *m, size_t len, size_t off, unsigned an,
			    struct scan *s, struct dns_reply *r)
{
	struct rr rr;

	s->memo_off = SIZE_MAX;
	memset(s->slot, 0, sizeof(s->slot));
	for (unsigned i = 0; i < an && !rr_read(m, len, &off, &rr); i++)
		address_take(m, len, &rr, s, r);
}

/* The header and the question; *off is left at the answer section. */
static int question_read(const uint8_t *m, size_t len, struct dns_reply *r, size_t *off)
{
	uint16_t flags;

	if (len < HDR_LEN)
		return -EINVAL;
	flags = get16(m + 2);
	if (!(flags & FLAG_QR) || (flags >> 11 & 0xf) || get16(m + 4) != 1)
		return -EINVAL;
	r->id = get16(m);
	r->rcode = flags & 0xf;
	r->truncated = flags & FLAG_TC;
	if (name_read(m, len, HDR_LEN, r->qname, off) || len - *off < 4)
		return -EINVAL;
	r->qtype = get16(m + *off);
	r->qclass = get16(m + *off + 2);
	*off += 4;
	return 0;
}

int dns_reply_parse(const uint8_t *msg, size_t len, struct dns_reply *out)
{
	struct dns_reply r;
	struct scan s;
	size_t off;
	unsigned an;

	memset(&r, 0, sizeof(r));
	if (question_read(msg, len, &r, &off))
		return -EINVAL;
	an = get16(msg + 6);
	if (answers_check(msg, len, off, an, &s))
		return -EINVAL;
	memcpy(s.name[0], r.qname, sizeof(r.qname));
	s.hash[0] = name_hash(r.qname);
	s.ttl[0] = UINT32_MAX;
	s.n = 1;
	chain_follow(msg, len, &s);
	r.nchain = (uint8_t)s.n;
	r.chain_ttl = s.ttl[s.n - 1];
	answers_collect(msg, len, off, an, &s, &r);
	*out = r;
	return 0;
}
