/* preset.h - other gateways' logs mapped onto the native event format.
 *
 * input.format selects a preset; each one transforms one message (a JSON
 * object in the foreign format) into native-format JSON text that the
 * native parser (event.h) then validates, so every later stage, the DLQ
 * reasons included, is the same for all formats. Foreign fields without a
 * native counterpart are carried along under their own names (under
 * "metadata" when the name is a native one). Uses jansson: the native
 * format stays on the zero-copy path.
 *
 * Mappings (foreign -> native):
 *  cloudflare  id, created_at -> ts, gateway_id|gateway (else metadata.
 *              gateway_id, else "cloudflare"), provider, model, path ->
 *              endpoint, status_code -> status, duration -> latency_ms,
 *              success, cached, tokens_in, tokens_out, cost -> cost_usd,
 *              metadata (a JSON string, parsed; user_id / client_ip taken
 *              from it), user_agent, request/response bodies.
 *  litellm     StandardLoggingPayload: id, startTime (epoch s) -> ts,
 *              endTime-startTime (or response_time) -> latency_ms,
 *              completionStartTime-startTime -> ttfb_ms,
 *              custom_llm_provider -> provider, model, status
 *              success|failure -> 200 | error_information.error_code (else
 *              500), prompt_tokens/completion_tokens -> tokens_in/out,
 *              response_cost -> cost_usd, cache_hit -> cached, end_user ->
 *              user_id, requester_ip_address (or metadata's) -> client_ip,
 *              call_type -> endpoint, messages -> request.messages,
 *              response, metadata; gateway_id = metadata.
 *              user_api_key_team_id, else model_group, else "litellm".
 *  otel-genai  spanId -> id, startTimeUnixNano -> ts, end-start ->
 *              latency_ms, attributes (object or OTLP [{key, value}]):
 *              gen_ai.provider.name|gen_ai.system -> provider,
 *              gen_ai.request.model|gen_ai.response.model -> model,
 *              gen_ai.usage.input_tokens/output_tokens -> tokens,
 *              http.response.status_code (else status.code 2 -> 500,
 *              else 200) -> status, gen_ai.operation.name -> endpoint,
 *              server.address|service.name (resource) -> gateway_id,
 *              user.id|enduser.id -> user_id, client.address -> client_ip;
 *              other attributes -> metadata.
 *
 * Pure functions: any thread.
 */
#ifndef GWS_PRESET_H
#define GWS_PRESET_H

#include <stddef.h>

#include "gwsieve/util.h"

typedef enum {
        GWS_PRESET_NATIVE = 0,
        GWS_PRESET_CLOUDFLARE,
        GWS_PRESET_LITELLM,
        GWS_PRESET_OTEL_GENAI,
        GWS_PRESET__CNT
} gws_preset_t;

/** @returns 0 and sets \p *out, or -1 for an unknown name. */
int gws_preset_from_name(const char *name, gws_preset_t *out);

/** @returns "native", "cloudflare", "litellm" or "otel-genai". */
const char *gws_preset_name(gws_preset_t p);

/** @brief Transforms \p len bytes of a foreign event into native JSON
 *  text appended to \p out.
 *  @returns 0, or -1 with \p *why (static text, e.g. "not a JSON object")
 *           and \p *field (the foreign field, or NULL). Never crashes on
 *           any bytes. Unmappable values are left out so that the native
 *           validation names the missing field. */
int gws_preset_transform(gws_preset_t p, const char *buf, size_t len,
                         gws_buf_t *out, const char **why,
                         const char **field);

#endif /* GWS_PRESET_H */
