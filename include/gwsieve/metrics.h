/* metrics.h - Prometheus text exposition (format 0.0.4) helpers.
 *
 * Writes metric families into a caller-owned gws_buf_t: one HELP/TYPE
 * header per family, then its samples; label values are escaped. The
 * process_* collectors follow the Prometheus client conventions
 * (process_cpu_seconds_total, process_resident_memory_bytes, ...), read
 * from getrusage() and /proc.
 *
 * @locality any thread; functions keep no state except the histogram the
 *           caller owns.
 */
#ifndef GWS_METRICS_H
#define GWS_METRICS_H

#include <stdint.h>

#include "gwsieve/util.h"

/** Latency histogram with fixed bucket bounds (seconds). Updated with
 *  relaxed atomics by one or more threads, read by any. */
#define GWS_HIST_NB 14
typedef struct gws_hist_s {
        uint64_t bucket[GWS_HIST_NB + 1]; /**< non-cumulative; last = +Inf */
        uint64_t count;
        uint64_t sum_ns;
} gws_hist_t;

/** The bucket upper bounds in seconds (2.5 us .. 1 s). */
extern const double gws_hist_bounds[GWS_HIST_NB];

/** @brief Records one observation of \p ns nanoseconds (atomic). */
void gws_hist_observe(gws_hist_t *h, uint64_t ns);

/** @brief Adds \p src into \p dst (atomic loads of \p src; the count
 *  added is the sum of the buckets read, so \p dst stays consistent while
 *  \p src is observed). */
void gws_hist_add(gws_hist_t *dst, const gws_hist_t *src);

/** @brief Family header: # HELP and # TYPE (counter, gauge, histogram). */
int gws_prom_family(gws_buf_t *b, const char *name, const char *type,
                    const char *help);

/** @brief One sample. \p labels is NULL or a NULL-terminated list of
 *  name, value, name, value, ... (values are escaped). */
int gws_prom_u64(gws_buf_t *b, const char *name, const char *const *labels,
                 uint64_t v);
int gws_prom_dbl(gws_buf_t *b, const char *name, const char *const *labels,
                 double v);

/** @brief The _bucket/_sum/_count samples of histogram \p name (the
 *  family header is the caller's); _count is the +Inf bucket. */
int gws_prom_hist(gws_buf_t *b, const char *name, const gws_hist_t *h);

/** @brief process_cpu_seconds_total, process_resident_memory_bytes,
 *  process_virtual_memory_bytes, process_start_time_seconds,
 *  process_open_fds, process_max_fds (families included). */
int gws_prom_process(gws_buf_t *b);

/** @brief Reads this process's CPU seconds (user+sys) and resident bytes.
 *  @returns 0, or -1 if /proc is not readable (values then 0). */
int gws_proc_usage(double *cpu_s, uint64_t *rss_bytes);

#endif /* GWS_METRICS_H */
