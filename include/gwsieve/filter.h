/* filter.h - the keep/drop decision for one scored event.
 *
 * Errors and anomalies are always kept (unless disabled); normal events
 * are sampled deterministically on the event id, so replaying the same
 * input keeps the same events. Pure functions: any thread. */
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
        GWS_KEEP__CNT
} gws_keep_t;

/** @returns "error", "anomaly", "sample" or "dropped". */
const char *gws_keep2str(gws_keep_t k);

/** @returns 1 if an event with id \p id is in the \p rate sample
 *  (deterministic: hash of the id, uniform in [0,1), compared to rate). */
int gws_filter_sampled(const char *id, size_t len, double rate);

/** @brief Decides whether \p ev with score \p sc is kept, and why. */
gws_keep_t gws_filter_decide(const gws_config_t *cfg, const gws_event_t *ev,
                             const gws_score_t *sc);

#endif /* GWS_FILTER_H */
