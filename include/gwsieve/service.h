/* service.h - `gwsieve run`: the consumer-group member that feeds the
 * pipeline from Kafka and produces its outputs with at-least-once
 * delivery. See the DESIGN block in src/service.c for the threads.
 */
#ifndef GWS_SERVICE_H
#define GWS_SERVICE_H

#include <signal.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

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

/** @brief The configuration of an assign-only consumer (never joins or
 *  commits) with \p cfg's group id and Kafka properties (connection,
 *  security, kafka.consumer.*), named \p client_id; logs through the
 *  gwsieve logger. @returns the caller's conf, or NULL with \p errstr
 *  naming the property. */
rd_kafka_conf_t *gws_service_reader_conf(const gws_config_t *cfg,
                                         const char *client_id, char *errstr,
                                         size_t errstr_size);

/** @brief rd_kafka_new() for a client configured from \p cfg
 *  (gws_service_new()'s, or one from gws_service_reader_conf()).
 *  librdkafka checks some properties only here and names them in its own
 *  words; \p errstr then says, for each property named, where its value
 *  came from: "WHAT: REFUSAL (librdkafka refused the WHAT configuration:
 *  fetch.max.bytes=524288 from "kafka.consumer"; message.max.bytes=1000000
 *  is librdkafka's default; set them under ...)", on one line.
 *  @returns the handle, which owns \p conf, or NULL with \p errstr
 *           prefixed by \p what; \p conf is then still the caller's. */
rd_kafka_t *gws_service_kafka_new(const gws_config_t *cfg,
                                  rd_kafka_type_t type, rd_kafka_conf_t *conf,
                                  const char *what, char *errstr,
                                  size_t errstr_size);

/** @brief rd_kafka_topic_new() with librdkafka's default topic conf on the
 *  producer \p rk (gws_service_new()'s). librdkafka 2.0.2 checks the
 *  topic's properties against the producer's here (message.timeout.ms
 *  must be greater than linger.ms, ...) and says why only in a log line;
 *  \p errstr then says it as gws_service_kafka_new() does: "producer
 *  topic "NAME": REFUSAL (librdkafka refused the producer topic "NAME"
 *  configuration: linger.ms=400000 from "kafka.producer"; ...)".
 *  @returns the topic handle, or NULL with \p errstr. */
rd_kafka_topic_t *gws_service_topic_new(const gws_config_t *cfg,
                                        rd_kafka_t *rk, const char *topic,
                                        char *errstr, size_t errstr_size);

#endif /* GWS_SERVICE_H */
