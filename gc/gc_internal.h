/* Shared by the files of gc/: the retention step of a run. */
#ifndef BERTH_GC_GC_INTERNAL_H
#define BERTH_GC_GC_INTERNAL_H

#include "gc/gc.h"
#include "storage/meta.h"

/* Expires the tags due at now (dry run: only reports them) into r->expired
 * and the pinned ones into r->kept. */
int gc_retention_expire(struct meta *m, const struct gc_run_options *o,
                        uint64_t now, struct gc_report *r)
        __attribute__((warn_unused_result));

/* What the pins keep and how long untagged manifests stay, for meta_. */
void gc_keep_init(struct meta_keep *k, const struct gc_policy *policy,
                  const struct gc_pins *pins);

/* Adds a kept tag ("" for a manifest) to the report. */
int gc_report_kept(struct gc_report *r, const char *repo, const char *tag,
                   const char *digest, const char *pin, const char *reason)
        __attribute__((warn_unused_result));

#endif
