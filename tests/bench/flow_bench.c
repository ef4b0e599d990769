/*
 * flow_bench: the per-record costs of observing, in-process (no root): the DLT_NFLOG parser,
 * the flow table when flows repeat and when every record is a new flow (eviction), and the
 * table's memory per flow from its struct size and from RSS growth.
 *
 * `flow_bench storm SECONDS DST_IP [NPORTS [CLIENT NCLIENTS]]` is the traffic side of
 * tests/bench/flows.sh: it sends UDP datagrams as fast as one core can from a raw socket,
 * each with a new 5-tuple (destination ports cycle over NPORTS ports from 5000, source ports
 * over this client's share of 1024-65023), so each is a new conntrack entry and a connection
 * start the ruleset logs. Prints what it sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../daemon/observe/capture.h"
#include "../../daemon/observe/flows.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

/* A frame as the kernel writes it for a TCP SYN: header TLVs, prefix, devices, payload. */
static size_t frame_build(uint8_t *b)
{
	static const char prefix[] = "moat:pass";
	uint8_t pkt[60] = { 0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, IPPROTO_TCP };
	size_t n = 4;
	uint16_t t;

	b[0] = AF_INET, b[3] = 1;
	inet_pton(AF_INET, "10.1.0.2", pkt + 12);
	inet_pton(AF_INET, "10.1.0.3", pkt + 16);
	pkt[20] = 0x9c, pkt[21] = 0x40, pkt[22] = 0x15, pkt[23] = 0x38;
	struct { uint16_t type; const void *v; size_t len; } tlvs[] = {
		{ 1, "\x08\x00\x02\x00", 4 }, { 10, prefix, sizeof(prefix) }, { 4, "\0\0\0\2", 4 },
		{ 5, "\0\0\0\3", 4 }, { 3, "\0\0\0\0\x65\0\0\0\0\0\0\0\0\0\0\1", 16 }, { 9, pkt, sizeof(pkt) },
	};
	for (size_t i = 0; i < sizeof(tlvs) / sizeof(tlvs[0]); i++) {
		t = (uint16_t)(4 + tlvs[i].len);
		memcpy(b + n, &t, 2);
		memcpy(b + n + 2, &tlvs[i].type, 2);
		memcpy(b + n + 4, tlvs[i].v, tlvs[i].len);
		n += (4 + tlvs[i].len + 3) & ~3u;
	}
	return n;
}

static void parse_bench(void)
{
	uint8_t frame[256];
	size_t len = frame_build(frame), ok = 0, n = 10 * 1000 * 1000;
	struct capture_record r;
	double t0 = now_s(), dt;

	for (size_t i = 0; i < n; i++)
		ok += capture_parse(frame, len, &r) == 0;
	dt = now_s() - t0;
	printf("nflog parse:        %.0f ns/record (%zu-byte frames, %s)\n", dt * 1e9 / n, len,
	       ok == n ? "all parsed" : "PARSE FAILED");
}

static struct flow_key key(uint32_t i)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.src.name = 1 + i % 1000;
	k.dst.addr.family = AF_INET;
	memcpy(k.dst.addr.a, &i, 4);
	k.proto = IPPROTO_TCP;
	k.port = (uint16_t)(i >> 16);
	return k;
}

/* ns per flows_get: keys drawn from nkeys (hits once warm), or all new (misses, evictions). */
static double table_run(struct flows *t, uint32_t nkeys, size_t n)
{
	bool fresh;
	double t0 = now_s();

	for (size_t i = 0; i < n; i++) {
		struct flow_key k = key(nkeys ? (uint32_t)(i * 2654435761u) % nkeys : (uint32_t)i + 7777777u);

		flows_get(t, &k, &fresh)->count++;
	}
	return (now_s() - t0) * 1e9 / (double)n;
}

static void table_bench(void)
{
	struct flows *t = NULL;

	if (flows_new(65536, NULL, NULL, &t) < 0)
		return;
	double ns;

	table_run(t, 100, 100000);
	printf("flow table, hot:    %.0f ns/record (100 flows seen over and over)\n",
	       table_run(t, 100, 5 * 1000 * 1000));
	table_run(t, 50000, 100000);
	printf("flow table, hits:   %.0f ns/record (50,000 flows in random order, cap 65,536)\n",
	       table_run(t, 50000, 5 * 1000 * 1000));
	ns = table_run(t, 0, 5 * 1000 * 1000);
	printf("flow table, new:    %.0f ns/record (every record a new flow; %llu evicted)\n", ns,
	       (unsigned long long)flows_evicted(t));
	flows_free(t);
}

static void memory_bench(void)
{
	size_t cap = 1 << 20;
	struct flows *t = NULL;
	long before = rss_kib(), after;
	bool fresh;

	if (flows_new(cap, NULL, NULL, &t) < 0)
		return;
	for (uint32_t i = 0; i < cap; i++) {
		struct flow_key k = key(i);

		flows_get(t, &k, &fresh);
	}
	after = rss_kib();
	printf("flow memory:        %zu bytes/flow reserved (struct flow %zu + bucket %zu); "
	       "RSS grew %.1f bytes/flow over %zu flows\n",
	       flows_bytes(t) / cap, sizeof(struct flow), sizeof(uint32_t),
	       (double)(after - before) * 1024.0 / (double)cap, cap);
	flows_free(t);
}

/* ---- storm: the traffic generator ---- */

#define BATCH 256

static int storm(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 0, t0, dt;
	unsigned nports = argc > 3 ? (unsigned)atoi(argv[3]) : 16;
	unsigned client = argc > 4 ? (unsigned)atoi(argv[4]) : 0;
	unsigned nclients = argc > 5 ? (unsigned)atoi(argv[5]) : 1;
	unsigned range = nclients ? 64000 / nclients : 0;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	static uint8_t dgrams[BATCH][16];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint64_t sent = 0, errors = 0;
	uint32_t seq = 0;
	int fd;

	if (argc < 3 || seconds <= 0 || !nports || !range || client >= nclients ||
	    inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: flow_bench storm SECONDS DST_IP [NPORTS [CLIENT NCLIENTS]]\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);	/* the kernel adds the IP header */
	if (fd < 0)
		return perror("raw socket"), 1;
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ dgrams[i], sizeof(dgrams[i]) };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &dst, .msg_namelen = sizeof(dst),
							 .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	t0 = now_s();
	while ((dt = now_s() - t0) < seconds) {
		for (int i = 0; i < BATCH; i++, seq++) {
			uint16_t sport = htons((uint16_t)(1024 + client * range + (seq / nports) % range));
			uint16_t dport = htons((uint16_t)(5000 + seq % nports));
			uint16_t len = htons(sizeof(dgrams[i]));

			memcpy(dgrams[i], &sport, 2);
			memcpy(dgrams[i] + 2, &dport, 2);
			memcpy(dgrams[i] + 4, &len, 2);
			memset(dgrams[i] + 6, 0, 2);		/* no checksum: valid for IPv4 UDP */
		}
		int n = sendmmsg(fd, msgs, BATCH, 0);

		if (n > 0)
			sent += (uint64_t)n;
		else
			errors++;
	}
	close(fd);
	printf("storm: sent %llu datagrams (new 5-tuples) in %.2f s: %.0f/s, %llu send errors\n",
	       (unsigned long long)sent, dt, (double)sent / dt, (unsigned long long)errors);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "storm"))
		return storm(argc - 1, argv + 1);
	parse_bench();
	table_bench();
	memory_bench();
	return 0;
}
