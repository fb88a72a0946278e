/* json_ref.h - the frozen reference tokenizer (tests/ref/json_ref.c). */
#ifndef GWS_JSON_REF_H
#define GWS_JSON_REF_H

#include "gwsieve/json.h"

/** @brief gws_json_parse() as of commit 10044c5, for differential tests. */
gws_jerr_t gws_json_ref_parse(gws_jdoc_t *doc, const char *buf, size_t len,
                              const gws_json_limits_t *lim);

#endif
