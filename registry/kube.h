/* The image references a Kubernetes cluster uses, read from inside a pod
 * through the Kubernetes API (libcurl + jansson), for `berth gc
 * --pins-from-kubernetes`: what is pinned is never expired or collected.
 *
 * Where from: the pod's service account, i.e. the files `token` and
 * `ca.crt` of /var/run/secrets/kubernetes.io/serviceaccount/ (env
 * BERTH_KUBE_SA_DIR instead, for tests), and the API server at
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, verified
 * against that CA only, with `Authorization: Bearer <token>`.
 *
 * What: in all namespaces, page by page (limit=500, continue=…), the
 * lists below. The service account needs a ClusterRole with `list` on
 * them all:
 *   pods                                    spec.{containers,initContainers,
 *                                           ephemeralContainers}[].image and
 *                                           status.{containerStatuses,
 *                                           initContainerStatuses,
 *                                           ephemeralContainerStatuses}[]
 *                                           .imageID (docker-pullable://
 *                                           dropped)
 *   deployments, replicasets, statefulsets, spec.template.spec, the same
 *   daemonsets (apps/v1), jobs (batch/v1)   three container lists
 *   cronjobs (batch/v1)                     spec.jobTemplate.spec.template
 *                                           .spec, likewise
 * Workloads count whatever their replicas (a Deployment scaled to zero
 * has no pod but wakes up with its image) and old ReplicaSets too (a
 * rollback pulls the previous release).
 *
 * Kept: references whose registry host is one of the given ones (see
 * kube_ref_host), without duplicates, sorted (strcmp). The token is never
 * printed and is wiped after use. */
#ifndef BERTH_REGISTRY_KUBE_H
#define BERTH_REGISTRY_KUBE_H

#include <stddef.h>

#define KUBE_SA_DIR     "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_PAGE_LIMIT 500   /* items asked for per page */
#define KUBE_PAGES_MAX  10000 /* pages per resource before giving up */
#define KUBE_TIMEOUT    300   /* default seconds for the whole listing */

struct kube_options {
	const char *const *hosts; /* registry hosts, "name[:port]" */
	size_t n_hosts;
	long timeout_s;     /* the whole listing; 0: KUBE_TIMEOUT */
	const char *sa_dir; /* NULL: env BERTH_KUBE_SA_DIR, else KUBE_SA_DIR */
};

/* Lists the references in use from the given hosts. On success RC_OK and
 * *refs (n strings, free with kube_pins_free). Otherwise an rc and one
 * line in err naming what failed (the file, the resource with the HTTP
 * status and the API's message, curl's message), and no list at all:
 * RC_UNAUTHORIZED (401), RC_DENIED (403), RC_BAD_REQUEST (no
 * service-account token or CA, no KUBERNETES_SERVICE_HOST), -EIO and
 * friends for transport and TLS failures, RC_UNSUPPORTED (another status,
 * an answer that is not a Kubernetes list, too many pages). */
int kube_pins(const struct kube_options *o, char ***refs, size_t *n, char *err,
              size_t errlen) __attribute__((warn_unused_result));

void kube_pins_free(char **refs, size_t n);

/* Where the registry host of ref (its first path component when that
 * holds '.' or ':' or is "localhost") stands against hosts: the host
 * name compared case-insensitively, the port exactly ("host" is not
 * "host:5000"). */
enum kube_ref_host {
	KUBE_REF_NO_HOST = 0, /* no host part ("nginx:1.25", "team/app") */
	KUBE_REF_OURS,        /* one of hosts */
	KUBE_REF_OTHER,       /* another registry */
};
enum kube_ref_host kube_ref_host(const char *ref, const char *const *hosts,
                                 size_t n_hosts);

#endif
