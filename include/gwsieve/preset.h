/* preset.h - other gateways' logs mapped onto the native event format.
 *
 * input.format selects a preset; each one transforms one message (a JSON
 * object in the foreign format) into native-format JSON text that the
 * native parser (event.h) then validates, so every later stage, the DLQ
 * reasons included, is the same for all formats. Uses jansson: the native
 * format stays on the zero-copy path, and the presets are not.
 *
 * Common rules:
 *  - Foreign fields that are not consumed by the mapping are carried along
 *    under their own names; a name that is also a native field name goes
 *    under "metadata" instead, so it cannot clobber the native field.
 *    Carrying never overwrites a key the mapping already set.
 *  - A value of the wrong JSON type is passed on under the native name so
 *    that the native validation names the field ("status must be an
 *    integer"). A value that must be computed with (epoch seconds, Unix
 *    nanoseconds) and cannot be is left out, so the native validation
 *    reports the required field as missing; *why / *field then name the
 *    foreign field.
 *  - Counts (tokens, status) accept integers, integral reals and digit
 *    strings; numbers accept numeric strings.
 *  - request/response bodies stay objects or strings; any other JSON value
 *    is wrapped as {"value": ...}.
 *
 * Mappings (foreign -> native):
 *  cloudflare  (AI Gateway log objects, GET .../ai-gateway/gateways/{id}/
 *              logs, plus bodies when the exporter adds them)
 *              id -> id; created_at (RFC 3339, or epoch s/ms/us/ns) -> ts;
 *              gateway_id | gateway | metadata.gateway_id | "cloudflare"
 *              -> gateway_id; account_id -> account_id; provider; model;
 *              path -> endpoint; status_code -> status (without it,
 *              success true 200 / false 500); duration (ms) ->
 *              latency_ms; success; cached; tokens_in; tokens_out; cost ->
 *              cost_usd; step -> step; user_agent; request | request_body
 *              -> request; response | response_body -> response; metadata
 *              (a JSON string, parsed; an object as is; unparseable ->
 *              top-level metadata_raw) -> metadata; metadata.user_id ->
 *              user_id; metadata.client_ip -> client_ip (the copy in
 *              metadata stays: redact.ip_truncate truncates both, in
 *              record.c).
 *  litellm     (StandardLoggingPayload, litellm/types/utils.py)
 *              id; trace_id; startTime (epoch s, or RFC 3339) -> ts;
 *              endTime - startTime (else response_time) -> latency_ms;
 *              completionStartTime - startTime -> ttfb_ms;
 *              custom_llm_provider | error_information.llm_provider ->
 *              provider; model; status "success" -> 200 / success true,
 *              "failure" -> error_information.error_code if 100..599, else
 *              by error_information.error_class (LiteLLM exception map:
 *              BadRequest 400, Authentication 401, PermissionDenied 403,
 *              NotFound 404, Timeout 408, UnprocessableEntity 422,
 *              RateLimit 429, ServiceUnavailable 503), else 500 / success
 *              false; no status (payloads older than it): a failure when
 *              error_information has a code or class or error_str is
 *              set (its class "litellm.RateLimitError: ..." mapped as
 *              above), else 200; prompt_tokens -> tokens_in; completion_tokens ->
 *              tokens_out; response_cost -> cost_usd; cache_hit -> cached;
 *              end_user | metadata.user_api_key_end_user_id -> user_id;
 *              requester_ip_address | metadata.requester_ip_address ->
 *              client_ip; user_agent; call_type -> endpoint; messages ->
 *              request {"messages": ...}; response; metadata ->
 *              metadata; metadata.user_api_key_org_id -> account_id;
 *              gateway_id = metadata.user_api_key_team_id | host of
 *              api_base | "litellm".
 *  otel-genai  (one span: OTLP/JSON field names, attributes as an object
 *              or as the OTLP [{key, value: {stringValue|intValue|...}}]
 *              array; GenAI semantic conventions)
 *              spanId | span_id -> id; traceId | trace_id -> trace_id;
 *              startTimeUnixNano | start_time_unix_nano -> ts; end - start
 *              -> latency_ms; attributes:
 *              gen_ai.provider.name | gen_ai.system -> provider;
 *              gen_ai.request.model | gen_ai.response.model -> model;
 *              gen_ai.usage.input_tokens | .prompt_tokens -> tokens_in;
 *              gen_ai.usage.output_tokens | .completion_tokens ->
 *              tokens_out; http.response.status_code -> status, else
 *              error.type when it is an HTTP status (400..599) or a
 *              known exception class (the litellm map: RateLimitError
 *              429, ...), else 500 when error.type is set or status.code
 *              is ERROR (2), else 200; gen_ai.operation.name -> endpoint; server.address |
 *              resource service.name | "otel" -> gateway_id; user.id |
 *              enduser.id -> user_id; client.address -> client_ip;
 *              gen_ai.input.messages (+ gen_ai.system_instructions) ->
 *              request {"messages", "system_instructions"};
 *              gen_ai.output.messages -> response {"messages"} (JSON
 *              strings are parsed); every other attribute -> metadata.
 *
 * Pure functions, no shared state: @locality any thread.
 */
#ifndef GWS_PRESET_H
#define GWS_PRESET_H

#include <stddef.h>

#include "gwsieve/util.h"

/** Input formats (input.format). */
typedef enum {
        GWS_PRESET_NATIVE = 0,   /**< "native": no transform */
        GWS_PRESET_CLOUDFLARE,   /**< "cloudflare" */
        GWS_PRESET_LITELLM,      /**< "litellm" */
        GWS_PRESET_OTEL_GENAI,   /**< "otel-genai" */
        GWS_PRESET__CNT
} gws_preset_t;

/** @brief Looks a preset up by its input.format name (exact match).
 *  @returns 0 and sets \p *out, or -1 for an unknown (or NULL) name;
 *           \p *out is then unchanged. */
int gws_preset_from_name(const char *name, gws_preset_t *out);

/** @returns "native", "cloudflare", "litellm", "otel-genai", or "unknown"
 *           for a value outside the enum. Static storage. */
const char *gws_preset_name(gws_preset_t p);

/** @brief Transforms \p len bytes of a foreign event into native JSON
 *  text appended to \p out.
 *
 *  GWS_PRESET_NATIVE copies the bytes unchanged (no validation).
 *
 *  @returns 0 when \p out holds one JSON object for gws_event_parse(); it
 *           may still miss required fields (that is for the native
 *           validation to report). Then \p *why is NULL, or a note (static
 *           text, e.g. "startTime is not a number") with \p *field the
 *           foreign field whose value was left out.
 *           -1 when the message is not a JSON object (or on an unknown
 *           preset or out of memory): \p *why is static text ("the
 *           message is not JSON", "the message is not a JSON object") and
 *           \p *field NULL; also for valid JSON that jansson cannot load
 *           ("a number is beyond the range of a double": 1e400; "the
 *           nesting is deeper than 2048"), which the native parser may
 *           accept; \p out may then hold a partial append, which
 *           the caller discards. The native parser run on the original
 *           bytes gives the precise reason (UTF-8, syntax, type).
 *  @remark Never crashes on any bytes. \p buf is borrowed and need not
 *          be NUL-terminated; \p out stays owned by the caller. */
int gws_preset_transform(gws_preset_t p, const char *buf, size_t len,
                         gws_buf_t *out, const char **why,
                         const char **field);

/** @brief The foreign field(s) a native field is read from, for a dead
 *  letter's detail: "prompt_tokens" for LiteLLM's tokens_in, "duration"
 *  for Cloudflare's latency_ms, alternatives as "a or b".
 *  @returns static text, or NULL when the native field has the same name
 *           in the foreign format, is not mapped, or \p p is native or
 *           unknown (\p native may be NULL). */
const char *gws_preset_source_field(gws_preset_t p, const char *native);

#endif /* GWS_PRESET_H */
