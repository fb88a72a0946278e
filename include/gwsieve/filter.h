/* filter.h - the keep/drop decision for one scored event.
 *
 * Ordered rules (config filter.rules) are tried first; the first rule
 * whose predicate matches decides: keep, drop, or sample at its rate.
 * Errors and anomalies are kept even when a drop/sample rule matches,
 * unless that rule says "force": true. Without a matching rule, errors
 * and anomalies are kept and normal events are sampled at
 * filter.normal_sample_rate. Sampling is deterministic on the event id,
 * so replaying the same input keeps the same events.
 *
 * Rule syntax (JSON):
 *   {"name": "drop-health", "when": PRED, "action": "keep|drop|sample",
 *    "rate": 0.01, "force": false}
 *   PRED = {"all": [PRED...]} | {"any": [PRED...]} | {"not": PRED}
 *        | {"field": "dotted.path", OP: VALUE}
 *   OP   = equals (string/number/bool) | in (array) | prefix (string)
 *        | gt | gte | lt | lte (number) | exists (bool)
 *
 * A gws_filter_t is immutable after gws_filter_new(): any thread. */
#ifndef GWS_FILTER_H
#define GWS_FILTER_H

#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/event.h"

/** Why an event was kept (sieve.kept), or that it was dropped. */
typedef enum {
        GWS_KEEP_NONE = 0, /**< dropped */
        GWS_KEEP_ERROR,    /**< "error" */
        GWS_KEEP_ANOMALY,  /**< "anomaly" */
        GWS_KEEP_SAMPLE,   /**< "sample" */
        GWS_KEEP_RULE,     /**< "rule:<name>" */
        GWS_KEEP__CNT
} gws_keep_t;

/** @returns "error", "anomaly", "sample", "rule" or "dropped". */
const char *gws_keep2str(gws_keep_t k);

/** @returns 1 if an event with id \p id is in the \p rate sample
 *  (deterministic: hash of the id, uniform in [0,1), compared to rate). */
int gws_filter_sampled(const char *id, size_t len, double rate);

/** @brief Decides whether \p ev with score \p sc is kept, and why. */
gws_keep_t gws_filter_decide(const gws_config_t *cfg, const gws_event_t *ev,
                             const gws_score_t *sc);

typedef struct gws_filter_s gws_filter_t;

/** @brief Compiles cfg->filter_rules. \p cfg is borrowed and must outlive
 *  the filter. @returns NULL with \p errstr naming the rule and problem
 *  ("filter.rules[2].when: unknown operator \"equal\""). */
gws_filter_t *gws_filter_new(const gws_config_t *cfg, char *errstr,
                             size_t errstr_size);

/** @brief Frees \p f. NULL is a no-op. */
void gws_filter_destroy(gws_filter_t *f);

/** @brief Decides with the rules, then the default policy.
 *  @param rule set to the deciding rule's name (GWS_KEEP_RULE, or a drop
 *         by rule), else NULL. Borrowed from \p f. */
gws_keep_t gws_filter_eval(const gws_filter_t *f, const gws_event_t *ev,
                           const gws_score_t *sc, const char **rule);

/** @returns the number of compiled rules. */
int gws_filter_rule_count(const gws_filter_t *f);

#endif /* GWS_FILTER_H */
