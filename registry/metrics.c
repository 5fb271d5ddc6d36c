/* Prometheus counters, lock-free: one atomic cell per route kind, method
 * class and status class. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc/gc.h"
#include "registry/http.h"
#include "registry/server.h"
#include "storage/meta.h"

static const char *const kind_names[R_KIND_COUNT] = {
        "none",      "base",    "catalog",    "tags",
        "manifest",  "blob",    "uploads",    "upload",
        "referrers", "healthz", "readyz",     "metrics",
        "token",     "gc",      "admin_tags", "admin_repository",
};
const char *
route_kind_name(enum route_kind kind)
{
	return (unsigned)kind < R_KIND_COUNT ? kind_names[kind] : "none";
}

static const char *const methods[] = {"GET",   "HEAD",   "PUT",  "POST",
                                      "PATCH", "DELETE", "OTHER"};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))
#define N_CLASSES 6 /* 1xx..5xx, and 0 for dropped */

static atomic_ulong requests[R_KIND_COUNT][N_METHODS][N_CLASSES];
static atomic_ulong bytes_out[R_KIND_COUNT];
static atomic_ulong nanos[R_KIND_COUNT];
static atomic_ulong aborted_reqs[R_KIND_COUNT];

static size_t
method_index(const char *m)
{
	for (size_t i = 0; i + 1 < N_METHODS; i++)
		if (strcmp(methods[i], m) == 0)
			return i;
	return N_METHODS - 1;
}

void
metrics_count(enum route_kind kind, const char *method, unsigned status,
              uint64_t bytes, uint64_t ns, int aborted)
{
	size_t cls = status / 100;

	if ((unsigned)kind >= R_KIND_COUNT)
		kind = R_NONE;
	if (cls >= N_CLASSES)
		cls = 0;
	atomic_fetch_add_explicit(&requests[kind][method_index(method)][cls], 1,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_out[kind], bytes,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&nanos[kind], ns, memory_order_relaxed);
	if (aborted)
		atomic_fetch_add_explicit(&aborted_reqs[kind], 1,
		                          memory_order_relaxed);
}

/* The collector's totals, the queue and what storage holds. */
static void
metrics_gc(FILE *f, struct app *app)
{
	static const enum gc_kind kinds[] = {GC_MANIFEST, GC_BLOB, GC_UPLOAD};
	struct meta_gc_state st;
	struct gc_stats gs;

	if (app->gc == NULL)
		return;
	gc_stats_get(app->gc, &gs);
	fprintf(f,
	        "# HELP berth_gc_runs_total Collection runs, by result.\n"
	        "# TYPE berth_gc_runs_total counter\n"
	        "berth_gc_runs_total{result=\"ok\"} %" PRIu64 "\n"
	        "berth_gc_runs_total{result=\"error\"} %" PRIu64 "\n",
	        gs.runs, gs.failed_runs);
	fprintf(f,
	        "# HELP berth_gc_tags_expired_total Tags a run expired (TTL "
	        "label or policy).\n"
	        "# TYPE berth_gc_tags_expired_total counter\n"
	        "berth_gc_tags_expired_total %" PRIu64 "\n"
	        "# HELP berth_gc_kept_by_pins_total Tags and manifests a run "
	        "kept because the cluster uses them.\n"
	        "# TYPE berth_gc_kept_by_pins_total counter\n"
	        "berth_gc_kept_by_pins_total %" PRIu64 "\n",
	        gs.tags_expired, gs.kept_by_pins);
	fputs("# HELP berth_gc_deleted_total Items deleted by the collector.\n"
	      "# TYPE berth_gc_deleted_total counter\n",
	      f);
	for (size_t i = 0; i < 3; i++)
		fprintf(f, "berth_gc_deleted_total{kind=\"%s\"} %" PRIu64 "\n",
		        gc_kind_name(kinds[i]), gs.items[kinds[i]]);
	fputs("# HELP berth_gc_deleted_bytes_total Bytes of the items deleted "
	      "by the collector.\n# TYPE berth_gc_deleted_bytes_total "
	      "counter\n",
	      f);
	for (size_t i = 0; i < 3; i++)
		fprintf(f,
		        "berth_gc_deleted_bytes_total{kind=\"%s\"} %" PRIu64
		        "\n",
		        gc_kind_name(kinds[i]), gs.bytes[kinds[i]]);
	fprintf(f,
	        "# HELP berth_gc_run_seconds_total Time spent in collection "
	        "runs.\n# TYPE berth_gc_run_seconds_total counter\n"
	        "berth_gc_run_seconds_total %.6f\n"
	        "# HELP berth_gc_last_run_seconds Duration of the last run.\n"
	        "# TYPE berth_gc_last_run_seconds gauge\n"
	        "berth_gc_last_run_seconds %.6f\n",
	        (double)gs.total_duration_ns / 1e9,
	        (double)gs.last_duration_ns / 1e9);
	if (meta_gc_state_get(app->meta, now_s(), &st) != 0)
		return;
	fprintf(f,
	        "# HELP berth_gc_queue_items Unreferenced items on the gc "
	        "queue.\n# TYPE berth_gc_queue_items gauge\n"
	        "berth_gc_queue_items %" PRIu64 "\n"
	        "# HELP berth_gc_waiting_items Queued items still in their "
	        "grace period.\n# TYPE berth_gc_waiting_items gauge\n"
	        "berth_gc_waiting_items %" PRIu64 "\n"
	        "# HELP berth_storage_blobs Blobs stored.\n"
	        "# TYPE berth_storage_blobs gauge\n"
	        "berth_storage_blobs %" PRIu64 "\n"
	        "# HELP berth_storage_blob_bytes Bytes of the blobs stored.\n"
	        "# TYPE berth_storage_blob_bytes gauge\n"
	        "berth_storage_blob_bytes %" PRIu64 "\n"
	        "# HELP berth_storage_manifests Manifests stored (one per "
	        "repository holding it).\n"
	        "# TYPE berth_storage_manifests gauge\n"
	        "berth_storage_manifests %" PRIu64 "\n",
	        st.queue_len, st.queue_len - st.due, st.blobs, st.blob_bytes,
	        st.manifests);
}

/* Index writes (the pull path makes none: reads are flushed in
 * batches) and policy reloads. */
static void
metrics_retention(FILE *f, struct app *app)
{
	struct meta_stats ms;
	unsigned long ok, bad;

	meta_stats_get(app->meta, &ms);
	policy_stats(app->policy, &ok, &bad);
	fprintf(f,
	        "# HELP berth_index_write_txns_total Write transactions "
	        "committed to the index.\n"
	        "# TYPE berth_index_write_txns_total counter\n"
	        "berth_index_write_txns_total %" PRIu64 "\n"
	        "# HELP berth_index_flush_txns_total Of those, batches of "
	        "reads "
	        "and last-pull times written.\n"
	        "# TYPE berth_index_flush_txns_total counter\n"
	        "berth_index_flush_txns_total %" PRIu64 "\n"
	        "# HELP berth_policy_reloads_total Reloads of the retention "
	        "policy file by result.\n"
	        "# TYPE berth_policy_reloads_total counter\n"
	        "berth_policy_reloads_total{result=\"ok\"} %lu\n"
	        "berth_policy_reloads_total{result=\"failed\"} %lu\n",
	        ms.write_txns, ms.flush_txns, ok, bad);
}

char *
metrics_render(struct app *app)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fputs("# HELP berth_http_requests_total HTTP requests by route, method "
	      "and status class.\n# TYPE berth_http_requests_total counter\n",
	      f);
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		for (size_t m = 0; m < N_METHODS; m++)
			for (size_t c = 0; c < N_CLASSES; c++) {
				unsigned long v =
				        atomic_load(&requests[k][m][c]);
				if (v == 0)
					continue;
				fprintf(f,
				        "berth_http_requests_total{route=\"%"
				        "s\","
				        "method=\"%s\",code=\"%zuxx\"} %lu\n",
				        kind_names[k], methods[m], c, v);
			}
	fputs("# HELP berth_http_response_bytes_total Bytes sent in response "
	      "bodies (of a cut-off answer, those the client acknowledged).\n# "
	      "TYPE berth_http_response_bytes_total counter\n",
	      f);
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		fprintf(f,
		        "berth_http_response_bytes_total{route=\"%s\"} %lu\n",
		        kind_names[k], atomic_load(&bytes_out[k]));
	fputs("# HELP berth_http_requests_aborted_total Requests whose client "
	      "went away before the end of the answer (their bytes count what "
	      "was acknowledged).\n# TYPE berth_http_requests_aborted_total "
	      "counter\n",
	      f);
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		fprintf(f,
		        "berth_http_requests_aborted_total{route=\"%s\"} %lu\n",
		        kind_names[k], atomic_load(&aborted_reqs[k]));
	fputs("# HELP berth_http_request_seconds_total Time spent serving "
	      "requests.\n# TYPE berth_http_request_seconds_total counter\n",
	      f);
	for (size_t k = 0; k < R_KIND_COUNT; k++)
		fprintf(f,
		        "berth_http_request_seconds_total{route=\"%s\"} %.6f\n",
		        kind_names[k], (double)atomic_load(&nanos[k]) / 1e9);
	metrics_gc(f, app);
	metrics_retention(f, app);
	fprintf(f,
	        "# HELP berth_http_requests_in_flight Requests being served.\n"
	        "# TYPE berth_http_requests_in_flight gauge\n"
	        "berth_http_requests_in_flight %ld\n",
	        atomic_load(&app->inflight));
	{
		unsigned long refused, cut;
		server_guard_counts(&refused, &cut);
		fprintf(f,
		        "# HELP berth_http_connections_closed_total "
		        "Connections the server closed unserved: over "
		        "--max-connections (limit), request head not complete "
		        "within --header-timeout (header_timeout).\n"
		        "# TYPE berth_http_connections_closed_total counter\n"
		        "berth_http_connections_closed_total{reason=\"limit\"} "
		        "%lu\n"
		        "berth_http_connections_closed_total{reason=\"header_"
		        "timeout\"} %lu\n",
		        refused, cut);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
