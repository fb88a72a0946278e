/* placement.h - is the input keyed the way the detectors assume?
 *
 * Detector state is per input partition (detect.h): a gateway's rate,
 * error share, heavy hitters and known models are learned from the events
 * of the partition its traffic arrives on, which the event contract makes
 * one partition (gateway-event.md: the message key is the gateway_id).
 * When producers key otherwise (no key, librdkafka's random partitioner,
 * another field), every partition sees a fragment of every gateway: each
 * partition alerts "new_value" for models the gateway has called all along
 * on the others, and rate baselines are thin. Nothing in the events says
 * so; this module notices it.
 *
 * It keeps a process-wide table of gateway_id -> the first input partition
 * it was met on. A detector calls gws_placement_note() when it creates a
 * gateway's entity (once per gateway and partition, not per event); a
 * gateway met on a second partition is logged (a WARNING for the first few
 * gateways, naming both partitions) and counted. Adding partitions to the
 * input topic moves keys too: the same signal, expected then.
 *
 * Bounded: at most GWS_PLACEMENT_MAX gateways are tracked; beyond that new
 * gateways are not checked (counted as untracked).
 *
 * @locality any thread (one mutex, taken only when a partition meets a
 * gateway for the first time).
 */
#ifndef GWS_PLACEMENT_H
#define GWS_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#define GWS_PLACEMENT_MAX 65536

/** What gws_placement_note() found. */
typedef enum {
        GWS_PLACE_HOME,      /**< first met here, or met here before */
        GWS_PLACE_SPLIT,     /**< met on another partition before */
        GWS_PLACE_UNTRACKED, /**< table full or out of memory: not checked */
} gws_place_t;

/** @brief Notes that \p partition met gateway \p gw (\p len bytes, not
 *  NUL-terminated; copied). Logs the first gateways found on a second
 *  partition. */
gws_place_t gws_placement_note(const char *gw, size_t len,
                               int32_t partition);

/** Process-wide counts (relaxed reads, any thread). */
typedef struct gws_placement_stats_s {
        uint64_t gateways;  /**< gateways tracked */
        uint64_t split;     /**< of them, met on more than one partition */
        uint64_t untracked; /**< notes not checked (table full, ENOMEM) */
} gws_placement_stats_t;

void gws_placement_stats(gws_placement_stats_t *st);

/** @brief Forgets every gateway and zeroes the counts (tests; a process
 *  that reuses partitions of another topic). */
void gws_placement_reset(void);

#endif
