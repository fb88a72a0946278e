/* record.h - writes output records from the token tape: trimmed
 * (allow/deny paths, bodies truncated or dropped) and redacted (every
 * string, keys included).
 *
 * Retained records are the input's members, minus what trimming removes,
 * plus the "sieve" member. Strings without anything to redact are copied
 * as raw bytes (no decode/re-encode); only strings the redactor's
 * prefilter flags are decoded, redacted and re-encoded, so the common case
 * costs one scan. Output is always valid UTF-8 JSON: truncation cuts at a
 * code point boundary of the rendered text and re-encodes it as a string.
 *
 * Trimming rules:
 *  - trim.deny: dotted paths removed ("metadata.internal", "request.tools").
 *  - trim.allow: when non-empty, only these paths (and their subtrees) are
 *    kept; the contract's required fields (id, ts, gateway_id, provider,
 *    model, status, latency_ms) are always kept. On the way to an
 *    allowed path only containers are kept (descended into): under
 *    "request.model", a request that is a string is dropped.
 *  - Arrays do not add a path segment: "request.messages.content" reaches
 *    the content of every message (the scalars of an array on the way to
 *    it are dropped).
 *  - trim.body_fields (top-level, default request/response): dropped for
 *    events kept as "sample" when trim.drop_bodies_when_sampled; otherwise
 *    a body whose JSON text is longer than trim.max_body_bytes becomes a
 *    string of its first max_body_bytes bytes followed by
 *    "...[truncated N bytes]", and sieve.truncated records {field: N}.
 *
 * redact.ip_truncate (with or without redact.enabled): the values of
 * client_ip and of metadata.client_ip / metadata.requester_ip_address
 * (the presets' copies) go through gws_redact_ip_truncate(), decoded
 * first; a value that is not a string (null apart) becomes
 * "[REDACTED:ip]". Replacements count as redactions of GWS_RK_IP. Dead
 * letters: gws_record_redact_dlq().
 *
 * A gws_record_t is per worker thread (scratch buffers).
 */
#ifndef GWS_RECORD_H
#define GWS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/event.h"
#include "gwsieve/filter.h"
#include "gwsieve/redact.h"
#include "gwsieve/util.h"

typedef struct gws_record_s gws_record_t;

/** Counters of one writer (monotonic; owner thread writes, any reads): of
 *  the records it wrote that were sent. A record's counts are held until
 *  the caller says it was sent (gws_record_sent()): one the sink refused
 *  is in no output and counts nothing. gws_record_retained(),
 *  gws_record_redact_json() and gws_record_redact_dlq() each begin a
 *  record, dropping the counts of one not sent; gws_record_text() and
 *  gws_record_redact_bytes() add to the record being written. */
typedef struct gws_record_stats_s {
        uint64_t redactions[GWS_RK__CNT]; /**< by kind */
        uint64_t bodies_truncated;
        uint64_t bodies_dropped;
        uint64_t fields_trimmed;
} gws_record_stats_t;

/** @brief New writer; compiles trim paths and the redactor.
 *  \p cfg is borrowed and must outlive the writer.
 *  @returns NULL with \p errstr naming the key and problem. */
gws_record_t *gws_record_new(const gws_config_t *cfg, char *errstr,
                             size_t errstr_size);

/** @brief Frees \p rw. NULL is a no-op. */
void gws_record_destroy(gws_record_t *rw);

/** @brief Writes the retained record of \p ev into \p out (reset first).
 *  \p rule is the deciding rule's name for GWS_KEEP_RULE.
 *  @returns 0, or -1 on allocation failure. */
int gws_record_retained(gws_record_t *rw, const gws_event_t *ev,
                        const gws_score_t *sc, gws_keep_t keep,
                        const char *rule, gws_buf_t *out);

/** @brief Appends \p len bytes of arbitrary text as a JSON string literal,
 *  redacted (DLQ payloads: bytes that could not be parsed are scanned as
 *  text). The bytes must be valid UTF-8. @returns 0 or -1. */
int gws_record_text(gws_record_t *rw, const char *text, size_t len,
                    gws_buf_t *out);

/** @brief Redacts arbitrary bytes (a DLQ payload that did not parse:
 *  scanned as text). @returns redactions (result appended to \p out), 0
 *  when nothing matched (\p out untouched), or -1. */
int gws_record_redact_bytes(gws_record_t *rw, const char *bytes, size_t len,
                            gws_buf_t *out);

/** @brief Rewrites an alert with every string redacted (decoded first:
 *  escapes hide nothing), but its alert_id (gwsieve's hash, the record's
 *  key); redact.fields replaces values below its top level only (an
 *  entity's), never the alert's own members.
 *  @returns the redactions made (>= 0) with the result in \p out (a copy
 *  when redaction is off), or -1 (not JSON, or out of memory; then
 *  \p out holds nothing to send). */
int gws_record_redact_json(gws_record_t *rw, const char *json, size_t len,
                           gws_buf_t *out);

/** @brief Redacts a dead letter's payload: as JSON when it is
 *  (gws_record_redact_json()), else as text (gws_record_redact_bytes(),
 *  escapes decoded). Under redact.ip_truncate (with or without
 *  redact.enabled) its addresses go too: in JSON the members named
 *  client_ip, requester_ip_address, client.address and the metadata
 *  address names, at any depth, as in retained records (fail closed), and
 *  the address literals of every other string; in text its address
 *  literals (gws_redact_ip_text()).
 *  @returns the redactions and truncations made, with the result in
 *  \p out (reset first); 0 when nothing changed (\p out then holds
 *  nothing useful: write \p payload), or -1 out of memory (a payload
 *  that is JSON is then not redacted as text: nothing to send). */
int gws_record_redact_dlq(gws_record_t *rw, const char *payload, size_t len,
                          gws_buf_t *out);

/** @brief Counts the record written last (its redactions and trimming)
 *  in the writer's counters: call once the sink took it. Does nothing
 *  when it counted nothing, or was counted already. */
void gws_record_sent(gws_record_t *rw);

/** @brief Adds this writer's counters into \p st (any thread). */
void gws_record_stats_add(const gws_record_t *rw, gws_record_stats_t *st);

#endif /* GWS_RECORD_H */
