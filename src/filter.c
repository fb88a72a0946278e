/* filter.c - keep errors and anomalies, sample the rest on the event id. */
#include "gwsieve/filter.h"

#include "gwsieve/util.h"

/* Fixed seed: the sample must not change between releases or hosts. */
#define SAMPLE_SEED 0x67777369657665ULL

const char *gws_keep2str(gws_keep_t k) {
        static const char *names[GWS_KEEP__CNT] = {"dropped", "error",
                                                   "anomaly", "sample"};
        return (unsigned)k < GWS_KEEP__CNT ? names[k] : "unknown";
}

int gws_filter_sampled(const char *id, size_t len, double rate) {
        uint64_t h;
        if (rate >= 1.0)
                return 1;
        if (rate <= 0.0)
                return 0;
        h = gws_hash64(id, len, SAMPLE_SEED);
        /* top 53 bits -> [0,1) */
        return (double)(h >> 11) * (1.0 / 9007199254740992.0) < rate;
}

gws_keep_t gws_filter_decide(const gws_config_t *cfg, const gws_event_t *ev,
                             const gws_score_t *sc) {
        if (cfg->keep_errors && gws_event_is_error(ev))
                return GWS_KEEP_ERROR;
        if (sc->score >= cfg->anomaly_keep_score && sc->score > 0)
                return GWS_KEEP_ANOMALY;
        if (gws_filter_sampled(ev->id.s, ev->id.len, cfg->normal_sample_rate))
                return GWS_KEEP_SAMPLE;
        return GWS_KEEP_NONE;
}
