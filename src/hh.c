/* hh.c - the heavy-hitter summary of a gateway's traffic (hh.h). */
#include "gwsieve/hh.h"

#include <stdlib.h>
#include <string.h>

#include "gwsieve/util.h"

size_t gws_hh_size(int nslots) {
        return sizeof(gws_hh_t) +
               (size_t)nslots * (sizeof(uint64_t) + 2 * sizeof(double) +
                                 3 * sizeof(float) + 2 * sizeof(uint32_t) +
                                 1 + GWS_HH_KEY);
}

/* The float arithmetic of the float counters (the same prio below 2^24,
 * where they were exact). */
void gws_hh_prio(gws_hh_t *hh, int k) {
        hh->prio[k] = (hh->hist[k] + (float)hh->cur[k]) * hh->wreq +
                      (hh->htok[k] + (float)hh->tok[k]) * hh->wtok;
}

void gws_hh_weigh(gws_hh_t *hh) {
        int k;
        hh->wreq = 1.0f / (hh->htotal > 1 ? hh->htotal : 1.0f);
        hh->wtok = 1.0f / (hh->httotal > 1 ? hh->httotal : 1.0f);
        for (k = 0; k < hh->used; k++)
                gws_hh_prio(hh, k);
}

/* Layout: the header, then the 8-byte arrays (h, tok, terr), the 4-byte
 * ones (prio, hist, htok, cur, err), the keys and their lengths. */
gws_hh_t *gws_hh_new(int nslots) {
        gws_hh_t *hh = calloc(1, gws_hh_size(nslots));
        char *p;
        if (!hh)
                return NULL;
        hh->nslots = nslots;
        hh->wreq = hh->wtok = 1;
        p = (char *)(hh + 1);
        hh->h = (uint64_t *)p;
        hh->tok = (double *)(hh->h + nslots);
        hh->terr = hh->tok + nslots;
        hh->prio = (float *)(hh->terr + nslots);
        hh->hist = hh->prio + nslots;
        hh->htok = hh->hist + nslots;
        hh->cur = (uint32_t *)(hh->htok + nslots);
        hh->err = hh->cur + nslots;
        p = (char *)(hh->err + nslots);
        hh->key = (char(*)[GWS_HH_KEY])p;
        hh->klen = (uint8_t *)(p + (size_t)nslots * GWS_HH_KEY);
        return hh;
}

/* Zeroes the window's counts. */
static void window_reset(gws_hh_t *hh) {
        int k;
        for (k = 0; k < hh->used; k++) {
                hh->cur[k] = hh->err[k] = 0;
                hh->tok[k] = hh->terr[k] = 0;
        }
        hh->total = hh->ttotal = 0;
}

void gws_hh_close(gws_hh_t *hh) {
        float a = hh->windows < 10 ? 1.0f / (float)(hh->windows + 1) : 0.1f;
        int k;
        hh->htotal += a * ((float)hh->total - hh->htotal);
        hh->httotal += a * ((float)hh->ttotal - hh->httotal);
        for (k = 0; k < hh->used; k++) {
                hh->hist[k] += a * ((float)hh->cur[k] - hh->hist[k]);
                hh->htok[k] += a * ((float)hh->tok[k] - hh->htok[k]);
        }
        window_reset(hh);
        hh->windows++;
}

void gws_hh_restart(gws_hh_t *hh) {
        window_reset(hh);
        gws_hh_weigh(hh);
}

int gws_hh_add(gws_hh_t *hh, const char *key, size_t len, double tokens) {
        uint64_t h = gws_hash64(key, len, 0x68686868);
        int i, sl = -1;
        hh->total += 1;
        hh->ttotal += tokens;
        /* This scan and the victim's below are most of the cost of
         * concentration() (detect.c): half the lookups miss (users and
         * IPs come and go) and read every slot, then every prio.
         * Unrolled, the loop's own instructions are paid once per 4
         * slots (-2.5M of ~25M Ir on 30k events). */
#pragma GCC unroll 4
        for (i = 0; i < hh->used; i++) {
                if (hh->h[i] == h) {
                        sl = i;
                        break;
                }
        }
        if (sl < 0) {
                if (hh->used < hh->nslots) {
                        sl = hh->used++;
                } else {
                        /* Space-saving: the newcomer takes the slot of
                         * the lightest (this window and usually, requests
                         * and tokens), with the victim's counts as its
                         * error bounds, and its usual counts (upper
                         * bounds: no false "sudden" for a key that only
                         * lost its slot). */
                        float m = hh->prio[0];
                        sl = 0;
#pragma GCC unroll 4
                        for (i = 1; i < hh->nslots; i++)
                                if (hh->prio[i] < m) {
                                        m = hh->prio[i];
                                        sl = i;
                                }
                }
                hh->err[sl] = hh->cur[sl];
                hh->terr[sl] = hh->tok[sl];
                hh->h[sl] = h;
                hh->klen[sl] =
                    (uint8_t)(len < GWS_HH_KEY ? len : GWS_HH_KEY);
                memcpy(hh->key[sl], key, hh->klen[sl]);
        }
        if (hh->cur[sl] < UINT32_MAX)
                hh->cur[sl]++;
        hh->tok[sl] += tokens;
        gws_hh_prio(hh, sl);
        return sl;
}
