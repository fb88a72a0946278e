/* service.h - `gwsieve run`: the consumer-group member that feeds the
 * pipeline from Kafka and produces its outputs with at-least-once
 * delivery. See the DESIGN block in src/service.c for the threads.
 */
#ifndef GWS_SERVICE_H
#define GWS_SERVICE_H

#include <signal.h>
#include <stddef.h>

#include "gwsieve/config.h"

typedef struct gws_service_s gws_service_t;

/** @brief Creates the clients (consumer, producer) and workers.
 *  \p cfg is borrowed and must outlive the service.
 *  @returns NULL with \p errstr naming the property or reason. */
gws_service_t *gws_service_new(const gws_config_t *cfg, char *errstr,
                               size_t errstr_size);

/** @brief Runs until \p *run becomes 0 (set it from a signal handler) or
 *  a fatal error, then drains, flushes, commits and leaves the group
 *  within cfg->shutdown_timeout_ms (plus the group leave).
 *  @locality main thread.
 *  @returns 0 on a clean stop, -1 on a fatal error (logged). */
int gws_service_run(gws_service_t *svc, volatile sig_atomic_t *run);

/** @brief Frees everything. NULL is a no-op. */
void gws_service_destroy(gws_service_t *svc);

#endif /* GWS_SERVICE_H */
