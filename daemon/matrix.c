/* The live matrix, taken once and streamed a row per line (daemon/matrix.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "matrix.h"
#include "moat/report.h"

struct matrix_stream {
	struct moat_report_matrix *m;
	size_t next, rows, width;
	char *row;		/* one row's verdicts, width + 1 bytes */
};

/* Ports from a request's "ports" array into v (at most max); how many, or -1 when bad. */
static int ports_get(json_t *req, struct moat_port_arg *v, size_t max)
{
	json_t *a = json_object_get(req, "ports"), *p;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) > max)
		return -1;
	json_array_foreach(a, i, p)
		if (!json_is_string(p) || moat_port_arg_parse(json_string_value(p), &v[i]) < 0)
			return -1;
	return (int)json_array_size(a);
}

static void stream_free(struct matrix_stream *st)
{
	if (!st)
		return;
	moat_report_matrix_free(st->m);
	free(st->row);
	free(st);
}

static void stream_closed(struct ctl_conn *conn, void *data)
{
	stream_free(data);
}

/* One row a call, then the end line. */
static int stream_feed(struct ctl_conn *conn, void *data)
{
	struct matrix_stream *st = data;
	json_t *line;
	int ret;

	if (st->next == st->rows) {
		line = json_pack("{s:b,s:I}", "end", 1, "rows", (json_int_t)st->rows);
		ret = line ? ctl_conn_send(conn, line) : -ENOMEM;
		json_decref(line);
		return ret < 0 ? ret : 0;
	}
	moat_report_matrix_row(st->m, st->next, st->row);
	line = json_pack("{s:I,s:I,s:s}", "port", (json_int_t)(st->next / st->width), "from",
			 (json_int_t)(st->next % st->width), "verdicts", st->row);
	ret = line ? ctl_conn_send(conn, line) : -ENOMEM;
	json_decref(line);
	st->next++;
	return ret < 0 ? ret : 1;
}

static int stream_new(const struct moat_plan *plan, const struct moat_port_arg *ports,
		      size_t nports, struct matrix_stream **out)
{
	struct matrix_stream *st = calloc(1, sizeof(*st));
	int ret = st ? moat_report_matrix_new(plan, ports, nports, &st->m) : -ENOMEM;

	if (!ret) {
		st->width = plan->es->n;
		st->rows = moat_report_matrix_rows(st->m);
		st->row = malloc(st->width + 1);
		ret = st->row ? 0 : -ENOMEM;
	}
	if (ret) {
		stream_free(st);
		return ret;
	}
	*out = st;
	return 0;
}

json_t *matrix_ctl(const struct moat_plan *plan, json_t *req, struct ctl_conn *conn)
{
	struct moat_port_arg ports[MATRIX_MAX_PORTS];
	int np = ports_get(req, ports, MATRIX_MAX_PORTS);
	struct matrix_stream *st = NULL;
	uint64_t t0 = loop_now_us();
	char msg[256];
	json_t *head;
	int ret;

	if (np <= 0)
		return ctl_reply_error("ports: expected a list of 1 to 64 ports like \"80/tcp\"");
	if (!plan)
		return ctl_reply_error("no plan yet: moatd has not synced with the runtime");
	ret = stream_new(plan, ports, (size_t)np, &st);
	if (ret == -E2BIG) {
		snprintf(msg, sizeof(msg), "the matrix of %zu endpoints x %d ports is over moatd's "
			 "limit of %u MiB (MOAT_REPORT_MATRIX_MAX): ask for fewer ports",
			 plan->es->n, np, MOAT_REPORT_MATRIX_MAX >> 20);
		return ctl_reply_error(msg);
	}
	if (ret < 0)
		return NULL;
	head = moat_report_matrix_head(st->m);
	if (!head || json_object_set_new(head, "ok", json_true())) {
		json_decref(head);
		stream_free(st);
		return NULL;
	}
	log_debug("matrix: %zu endpoints x %d ports taken in %llu us (%zu bytes)", st->width, np,
		  (unsigned long long)(loop_now_us() - t0), moat_report_matrix_bytes(st->m));
	ctl_conn_feed(conn, stream_feed, stream_closed, st);
	return head;
}
