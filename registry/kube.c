/* The image references in use in a Kubernetes cluster (see kube.h): the
 * service account's files, one libcurl handle kept across the pages (one
 * connection), jansson for the lists. All or nothing: the first failure
 * drops what was gathered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/rc.h"
#include "registry/client.h"
#include "registry/kube.h"
#include "registry/server.h"

#define BODY_MAX  (64u << 20) /* largest page kept */
#define TOKEN_MAX (64u * 1024u)

/* A list endpoint and the way from one of its items to a pod spec. */
struct resource {
	const char *name; /* as RBAC names it, for messages */
	const char *path;
	const char *spec[6]; /* object keys down to the pod spec, NULL-ended */
	int pod;             /* items are pods: their statuses count too */
};

static const struct resource resources[] = {
        {"pods", "/api/v1/pods", {"spec", NULL}, 1},
        {"deployments.apps",
         "/apis/apps/v1/deployments",
         {"spec", "template", "spec", NULL},
         0},
        {"replicasets.apps",
         "/apis/apps/v1/replicasets",
         {"spec", "template", "spec", NULL},
         0},
        {"statefulsets.apps",
         "/apis/apps/v1/statefulsets",
         {"spec", "template", "spec", NULL},
         0},
        {"daemonsets.apps",
         "/apis/apps/v1/daemonsets",
         {"spec", "template", "spec", NULL},
         0},
        {"jobs.batch",
         "/apis/batch/v1/jobs",
         {"spec", "template", "spec", NULL},
         0},
        {"cronjobs.batch",
         "/apis/batch/v1/cronjobs",
         {"spec", "jobTemplate", "spec", "template", "spec", NULL},
         0},
};

static const char *const container_lists[] = {"containers", "initContainers",
                                              "ephemeralContainers"};
static const char *const status_lists[] = {"containerStatuses",
                                           "initContainerStatuses",
                                           "ephemeralContainerStatuses"};

/* One listing in progress. */
struct kube {
	const struct kube_options *o;
	CURL *curl;
	struct curl_slist *hs; /* holds the Authorization header */
	char *base;            /* https://host:port */
	long deadline;         /* client_ms_now() value */
	char **refs;
	size_t n, cap;
};

/* ---- matching references ---- */

enum kube_ref_host
kube_ref_host(const char *ref, const char *const *hosts, size_t n_hosts)
{
	const char *slash = strchr(ref, '/');
	size_t len;

	if (slash == NULL)
		return KUBE_REF_NO_HOST;
	len = (size_t)(slash - ref);
	if (memchr(ref, '.', len) == NULL && memchr(ref, ':', len) == NULL &&
	    !(len == 9 && strncmp(ref, "localhost", 9) == 0))
		return KUBE_REF_NO_HOST;
	/* Ports are digits: a case-insensitive compare of "name:port" is
	 * the name's compare and the exact port's. */
	for (size_t i = 0; i < n_hosts; i++)
		if (strlen(hosts[i]) == len &&
		    strncasecmp(hosts[i], ref, len) == 0)
			return KUBE_REF_OURS;
	return KUBE_REF_OTHER;
}

/* Keeps ref when it is from one of our hosts. -1 on ENOMEM. */
static int
ref_add(struct kube *k, const char *ref)
{
	static const char pullable[] = "docker-pullable://";
	char **nv;

	if (ref == NULL)
		return 0;
	if (strncmp(ref, pullable, sizeof(pullable) - 1) == 0)
		ref += sizeof(pullable) - 1;
	if (*ref == '\0' ||
	    kube_ref_host(ref, k->o->hosts, k->o->n_hosts) != KUBE_REF_OURS)
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;

		if ((nv = realloc(k->refs, cap * sizeof(*nv))) == NULL)
			return -1;
		k->refs = nv;
		k->cap = cap;
	}
	if ((k->refs[k->n] = strdup(ref)) == NULL)
		return -1;
	k->n++;
	return 0;
}

/* The string under key in each item of obj's three lists: the images of
 * a pod spec's containers, the imageIDs of a pod status (what the node
 * really pulled). */
static int
lists_collect(struct kube *k, json_t *obj, const char *const lists[3],
              const char *key)
{
	json_t *c;
	size_t i;

	for (size_t l = 0; l < 3; l++)
		json_array_foreach(json_object_get(obj, lists[l]), i, c)
		{
			if (ref_add(k, json_string_value(
			                       json_object_get(c, key))) < 0)
				return -1;
		}
	return 0;
}

static int
item_collect(struct kube *k, const struct resource *r, json_t *item)
{
	json_t *spec = item;

	for (size_t i = 0; r->spec[i] != NULL; i++)
		spec = json_object_get(spec, r->spec[i]);
	if (lists_collect(k, spec, container_lists, "image") < 0)
		return -1;
	if (r->pod && lists_collect(k, json_object_get(item, "status"),
	                            status_lists, "imageID") < 0)
		return -1;
	return 0;
}

/* ---- the service account and the API server ---- */

/* Reads a file of at most max bytes; *out malloc'ed, NUL-terminated.
 * 0, or an errno value (EFBIG when larger). */
static int
file_read(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int e;

	if (f == NULL)
		return errno;
	if ((buf = malloc(max + 1)) == NULL) {
		fclose(f);
		return ENOMEM;
	}
	n = fread(buf, 1, max + 1, f);
	e = ferror(f) ? errno : n > max ? EFBIG : 0;
	fclose(f);
	if (e != 0) {
		explicit_bzero(buf, max + 1);
		free(buf);
		return e;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static const char *
sa_dir(const struct kube_options *o)
{
	const char *d = o->sa_dir;

	if (d == NULL || *d == '\0')
		d = getenv("BERTH_KUBE_SA_DIR");
	return d != NULL && *d != '\0' ? d : KUBE_SA_DIR;
}

/* The header "Authorization: Bearer <token>" into k->hs. */
static int
auth_header(struct kube *k, const char *dir, char *err, size_t errlen)
{
	char path[4096], *tok = NULL, *h = NULL;
	struct curl_slist *n;
	size_t len = 0;
	int e, rc = RC_OK;

	snprintf(path, sizeof(path), "%s/token", dir);
	if ((e = file_read(path, TOKEN_MAX, &tok, &len)) != 0) {
		snprintf(err, errlen,
		         "kubernetes: cannot read the service account token "
		         "%s: %s",
		         path, e == EFBIG ? "larger than 64 KiB" : strerror(e));
		return e == ENOMEM ? -ENOMEM : RC_BAD_REQUEST;
	}
	while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' ||
	                   tok[len - 1] == ' '))
		tok[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)tok[i] <= ' ' ||
		    (unsigned char)tok[i] >= 0x7f)
			len = 0;
	if (len == 0) {
		snprintf(err, errlen,
		         "kubernetes: the service account token %s is empty "
		         "or holds a space or control character",
		         path);
		rc = RC_BAD_REQUEST;
	} else if (asprintf(&h, "Authorization: Bearer %s", tok) < 0 ||
	           (n = curl_slist_append(k->hs, h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	} else {
		k->hs = n;
	}
	if (h != NULL) {
		explicit_bzero(h, strlen(h));
		free(h);
	}
	explicit_bzero(tok, TOKEN_MAX + 1);
	free(tok);
	return rc;
}

/* https://host:port of the API server, from the environment kubelet sets
 * in every pod. */
static int
api_base(struct kube *k, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *end;
	long p;
	int v6;

	if (host == NULL || *host == '\0') {
		snprintf(err, errlen,
		         "kubernetes: KUBERNETES_SERVICE_HOST is not set (not "
		         "running in a pod?)");
		return RC_BAD_REQUEST;
	}
	if (strcspn(host, "/@?#[] \t\r\n") != strlen(host)) {
		snprintf(err, errlen,
		         "kubernetes: KUBERNETES_SERVICE_HOST is not a host "
		         "name or address");
		return RC_BAD_REQUEST;
	}
	if (port == NULL || *port == '\0')
		port = "443";
	errno = 0;
	p = strtol(port, &end, 10);
	if (*end != '\0' || errno != 0 || p < 1 || p > 65535) {
		snprintf(err, errlen,
		         "kubernetes: KUBERNETES_SERVICE_PORT is not a port "
		         "number");
		return RC_BAD_REQUEST;
	}
	v6 = strchr(host, ':') != NULL;
	if (asprintf(&k->base, "https://%s%s%s:%ld", v6 ? "[" : "", host,
	             v6 ? "]" : "", p) < 0) {
		k->base = NULL;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return RC_OK;
}

/* The handle every page goes through: HTTPS only, verified against the
 * cluster's CA and nothing else. */
static int
curl_setup(struct kube *k, const char *dir, char *err, size_t errlen)
{
	char ca[4096];
	struct curl_slist *n;
	FILE *f;

	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	if ((f = fopen(ca, "re")) == NULL) {
		snprintf(err, errlen,
		         "kubernetes: cannot read the cluster CA %s: %s", ca,
		         strerror(errno));
		return RC_BAD_REQUEST;
	}
	fclose(f);
	if ((k->curl = curl_easy_init()) == NULL ||
	    (n = curl_slist_append(k->hs, "Accept: application/json")) ==
	            NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	k->hs = n;
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(k->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(k->curl, CURLOPT_CAINFO, ca);
	curl_easy_setopt(k->curl, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(k->curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(k->curl, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, k->hs);
	return RC_OK;
}

/* ---- listing ---- */

/* The line of a non-200 answer: "HTTP 403 Forbidden: <message>", from
 * the API's Status object when there is one. */
static int
status_fail(const struct resource *r, long status, const struct client_buf *p,
            char *err, size_t errlen)
{
	json_t *j = json_loadb(p->buf ? p->buf : "", p->len, 0, NULL);
	const char *reason = json_string_value(json_object_get(j, "reason"));
	const char *msg = json_string_value(json_object_get(j, "message"));
	char code[32];

	snprintf(err, errlen, "kubernetes: cannot list %s: ", r->name);
	snprintf(code, sizeof(code), "HTTP %ld", status);
	client_msg_cat(err, errlen, code);
	if (reason != NULL && *reason != '\0') {
		client_msg_cat(err, errlen, " ");
		client_msg_cat(err, errlen, reason);
	}
	if (msg != NULL && *msg != '\0' &&
	    (reason == NULL || strcmp(msg, reason) != 0)) {
		client_msg_cat(err, errlen, ": ");
		client_msg_cat(err, errlen, msg);
	}
	if (status == 403) {
		client_msg_cat(err, errlen,
		               " (the service account needs list on ");
		client_msg_cat(err, errlen, r->name);
		client_msg_cat(err, errlen, " in all namespaces)");
	}
	json_decref(j);
	if (status == 401)
		return RC_UNAUTHORIZED;
	return status == 403 ? RC_DENIED : RC_UNSUPPORTED;
}

/* GETs one page; RC_OK with a 200 answer in *p. */
static int
page_get(struct kube *k, const struct resource *r, const char *url,
         struct client_buf *p, char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	long left = k->deadline - client_ms_now(), status = 0;
	CURLcode cc;

	if (left <= 0) {
		snprintf(err, errlen,
		         "kubernetes: cannot list %s: timed out (at %s)",
		         r->name, k->base);
		return -ETIMEDOUT;
	}
	curl_easy_setopt(k->curl, CURLOPT_URL, url);
	client_curl_timeouts(k->curl, left);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, errbuf);
	client_curl_body(k->curl, p, BODY_MAX);
	cc = curl_easy_perform(k->curl);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, NULL);
	if (cc != CURLE_OK) {
		if (p->too_large) {
			snprintf(err, errlen,
			         "kubernetes: a page of %s is larger than %u "
			         "MiB",
			         r->name, BODY_MAX >> 20);
			return RC_TOO_LARGE;
		}
		snprintf(err, errlen,
		         "kubernetes: cannot list %s at %s: ", r->name,
		         k->base);
		client_msg_cat(err, errlen,
		               errbuf[0] ? errbuf : curl_easy_strerror(cc));
		if (cc == CURLE_OPERATION_TIMEDOUT)
			return -ETIMEDOUT;
		return cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return status_fail(r, status, p, err, errlen);
	return RC_OK;
}

/* Every page of one resource. */
static int
resource_list(struct kube *k, const struct resource *r, char *err,
              size_t errlen)
{
	char *cont = NULL, *url = NULL, *esc;
	int rc = RC_OK;

	for (unsigned pages = 0;; pages++) {
		struct client_buf p = {0};
		json_error_t jerr;
		json_t *root, *items, *item, *next;
		size_t i;

		if (pages == KUBE_PAGES_MAX) {
			snprintf(err, errlen,
			         "kubernetes: cannot list %s: more than %d "
			         "pages of %d",
			         r->name, KUBE_PAGES_MAX, KUBE_PAGE_LIMIT);
			rc = RC_UNSUPPORTED;
			break;
		}
		esc = cont ? curl_easy_escape(k->curl, cont, 0) : NULL;
		free(url);
		if ((cont != NULL && esc == NULL) ||
		    asprintf(&url, "%s%s?limit=%d%s%s", k->base, r->path,
		             KUBE_PAGE_LIMIT, esc ? "&continue=" : "",
		             esc ? esc : "") < 0) {
			curl_free(esc);
			url = NULL;
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			break;
		}
		curl_free(esc);
		if ((rc = page_get(k, r, url, &p, err, errlen)) != RC_OK) {
			free(p.buf);
			break;
		}
		root = json_loadb(p.buf ? p.buf : "", p.len, 0, &jerr);
		free(p.buf);
		items = json_object_get(root, "items");
		next = json_object_get(json_object_get(root, "metadata"),
		                       "continue");
		if (!json_is_object(root) ||
		    !(json_is_array(items) || json_is_null(items)) ||
		    !(next == NULL || json_is_string(next))) {
			snprintf(err, errlen,
			         "kubernetes: the answer listing %s is not a "
			         "Kubernetes list",
			         r->name);
			if (root == NULL) {
				client_msg_cat(err, errlen, ": ");
				client_msg_cat(err, errlen, jerr.text);
			}
			json_decref(root);
			rc = RC_UNSUPPORTED;
			break;
		}
		json_array_foreach(items, i, item)
		{
			if (item_collect(k, r, item) < 0) {
				rc = -ENOMEM;
				break;
			}
		}
		free(cont);
		cont = NULL;
		if (rc == RC_OK && json_string_length(next) > 0 &&
		    (cont = strdup(json_string_value(next))) == NULL)
			rc = -ENOMEM;
		json_decref(root);
		if (rc != RC_OK) {
			snprintf(err, errlen, "out of memory");
			break;
		}
		if (cont == NULL)
			break;
	}
	free(cont);
	free(url);
	return rc;
}

static int
ref_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
kube_pins_free(char **refs, size_t n)
{
	if (refs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(refs[i]);
	free(refs);
}

int
kube_pins(const struct kube_options *o, char ***refs, size_t *n, char *err,
          size_t errlen)
{
	struct kube k = {.o = o};
	const char *dir = sa_dir(o);
	size_t w = 0;
	int rc;

	if (o->n_hosts == 0) {
		snprintf(err, errlen,
		         "kubernetes: no registry host to keep "
		         "references of");
		return RC_BAD_REQUEST;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot start libcurl");
		return -ENOMEM;
	}
	k.deadline = client_ms_now() +
	             (o->timeout_s > 0 ? o->timeout_s : KUBE_TIMEOUT) * 1000L;
	if ((rc = auth_header(&k, dir, err, errlen)) != RC_OK ||
	    (rc = curl_setup(&k, dir, err, errlen)) != RC_OK ||
	    (rc = api_base(&k, err, errlen)) != RC_OK)
		goto done;
	for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
		if ((rc = resource_list(&k, &resources[i], err, errlen)) !=
		    RC_OK)
			goto done;
	if (k.n > 0)
		qsort(k.refs, k.n, sizeof(*k.refs), ref_cmp);
	for (size_t i = 0; i < k.n; i++) {
		if (w > 0 && strcmp(k.refs[w - 1], k.refs[i]) == 0)
			free(k.refs[i]);
		else
			k.refs[w++] = k.refs[i];
	}
	k.n = w;
	*refs = k.refs;
	*n = k.n;
	k.refs = NULL;
	k.n = 0;
done:
	kube_pins_free(k.refs, k.n);
	if (k.curl != NULL)
		curl_easy_cleanup(k.curl);
	for (struct curl_slist *h = k.hs; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(k.hs);
	free(k.base);
	curl_global_cleanup();
	return rc;
}
