/* hh.h - a heavy-hitter summary: space-saving (Metwally et al.) over the
 * requests and tokens of one dimension (client_ip or user_id) of one
 * gateway's traffic, window by window.
 *
 * A key's weight is its requests over the usual requests per window plus
 * its tokens over the usual tokens per window (wreq, wtok), so over the
 * current window every key with more than about 2/nslots of that weight
 * (its share of requests plus its share of tokens) holds a slot: a key
 * with few requests but most of the tokens keeps it (counting requests
 * only, it lost it to every newcomer and its share of tokens was never
 * seen). cur - err and tok - terr are guaranteed lower bounds of its
 * counts since it took the slot. hist, htok are the key's usual counts
 * per window (exponentially weighted over closed windows), so "suddenly"
 * means against the key's own past share. prio is always
 * gws_hh_prio() of the slot's counts (recomputed, never accumulated: a
 * restored summary evicts exactly as the saved one would).
 *
 * Structure of arrays: the per-event lookup scans only h[] and, on a
 * miss, prio[] (a few cache lines, not nslots slots). The detector
 * (detect.c) owns one per gateway and dimension, reads its fields, and
 * writes and reads them in its snapshots.
 *
 * @locality the owning detector's thread.
 */
#ifndef GWS_HH_H
#define GWS_HH_H

#include <stddef.h>
#include <stdint.h>

#define GWS_HH_KEY 46 /**< display key bytes kept per slot (truncated) */

/** A summary: the header, then its arrays in the same allocation. The
 *  counts of the current window are exact: requests in 32 bits (at
 *  UINT32_MAX they stay there), tokens and the totals in doubles (exact
 *  to 2^53); as floats they stopped at 2^24 requests (x + 1 == x) and
 *  drifted from 2^24 tokens on. The usual counts (moving averages) and
 *  the weights are floats. */
typedef struct gws_hh_s {
        double total, ttotal;  /**< requests / tokens this window */
        float htotal, httotal; /**< usual per window */
        float wreq, wtok;      /**< 1 / usual totals (at least 1) */
        int windows;           /**< closed windows seen */
        int nslots, used;
        uint64_t *h;           /**< key hash (identity) */
        double *tok, *terr;    /**< tokens this window, overestimate */
        float *prio;           /**< weighted hist + cur: eviction order */
        float *hist, *htok;    /**< usual requests / tokens per window */
        uint32_t *cur, *err;   /**< requests this window, overestimate */
        uint8_t *klen;         /**< display key (truncated) */
        char (*key)[GWS_HH_KEY];
} gws_hh_t;

/** @returns the bytes of a summary of \p nslots slots, all in one. */
size_t gws_hh_size(int nslots);

/** @brief A new empty summary of \p nslots slots (one allocation of
 *  gws_hh_size(); the caller frees it with free()). @returns NULL on
 *  ENOMEM. */
gws_hh_t *gws_hh_new(int nslots);

/** @brief Sets slot \p k's prio from its counts and the weights. */
void gws_hh_prio(gws_hh_t *hh, int k);

/** @brief Sets the weights from the usual totals, and every slot's
 *  prio. */
void gws_hh_weigh(gws_hh_t *hh);

/** @brief Counts one request of key \p key (\p len bytes) with \p tokens
 *  tokens. @returns its slot. */
int gws_hh_add(gws_hh_t *hh, const char *key, size_t len, double tokens);

/** @brief Ends a window: learns the usual counts from it (weight 1 /
 *  (windows + 1) for the first ten, then 0.1: a hitter's incident takes
 *  many windows to look usual) and starts the next one empty. The
 *  weights are not set: gws_hh_weigh() once the windows are closed. */
void gws_hh_close(gws_hh_t *hh);

/** @brief Starts the window afresh, learning nothing from its counts;
 *  sets the weights. */
void gws_hh_restart(gws_hh_t *hh);

#endif /* GWS_HH_H */
