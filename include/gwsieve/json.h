/* json.h - a single-pass JSON tokenizer into a flat token tape.
 *
 * The hot path parses each event once into an array of tokens that point
 * into the original bytes (no DOM, no allocation per field); every later
 * stage reads the tape: the event view picks its fields from it, filter
 * rules look values up in it, and the output writer walks it to emit the
 * trimmed, redacted record. UTF-8 is validated during the scan, and the
 * limits (depth, token count, string length) bound the work and the memory
 * on hostile input.
 *
 * Tokens of a container are followed by their children; `next` is the
 * index just after a token's subtree, so siblings are walked in O(1) each.
 * Object members are a key token (GWS_JT_STR with GWS_JF_KEY) followed by
 * the value's token(s).
 *
 * A gws_jdoc_t is reusable (gws_json_parse() resets it); one per thread.
 */
#ifndef GWS_JSON_H
#define GWS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/util.h"

typedef enum {
        GWS_JT_OBJ = 1,
        GWS_JT_ARR,
        GWS_JT_STR,
        GWS_JT_NUM,
        GWS_JT_TRUE,
        GWS_JT_FALSE,
        GWS_JT_NULL,
} gws_jtype_t;

#define GWS_JF_KEY 0x1 /**< a member name */
#define GWS_JF_ESC 0x2 /**< the string contains backslash escapes */

/** One token. Offsets are bytes into the parsed buffer. */
typedef struct gws_jtok_s {
        uint32_t start; /**< first byte (the quote / bracket / digit) */
        uint32_t len;   /**< raw length, quotes and brackets included */
        uint32_t next;  /**< index after this token's subtree */
        uint8_t type;   /**< gws_jtype_t */
        uint8_t flags;  /**< GWS_JF_* */
        uint16_t depth; /**< 0 for the root */
} gws_jtok_t;

/** Why a document was rejected. */
typedef enum {
        GWS_JE_OK = 0,
        GWS_JE_SYNTAX,  /**< not JSON */
        GWS_JE_UTF8,    /**< invalid UTF-8 (raw or in a \u escape) */
        GWS_JE_DEPTH,   /**< nesting deeper than max_depth */
        GWS_JE_TOKENS,  /**< more than max_tokens values/keys */
        GWS_JE_STRING,  /**< a string longer than max_string bytes */
        GWS_JE_NOMEM,
} gws_jerr_t;

typedef struct gws_json_limits_s {
        uint32_t max_depth;  /**< 0 = 64 */
        uint32_t max_tokens; /**< 0 = 1 << 20 */
        uint32_t max_string; /**< 0 = unlimited (bounded by the buffer) */
} gws_json_limits_t;

typedef struct gws_jdoc_s {
        const char *buf;    /**< borrowed: the parsed bytes */
        size_t len;
        gws_jtok_t *toks;   /**< owned */
        uint32_t ntoks, cap;
        size_t err_off;     /**< on error: byte offset of the problem */
        const char *err_what; /**< on error: static description */
        uint32_t *stack;    /**< owned: open containers */
        uint32_t stack_cap;
} gws_jdoc_t;

/** @brief Parses \p len bytes of \p buf (borrowed; must outlive the
 *  tokens' use). @returns GWS_JE_OK, or an error with err_off/err_what. */
gws_jerr_t gws_json_parse(gws_jdoc_t *doc, const char *buf, size_t len,
                          const gws_json_limits_t *lim);

/** @brief Frees the document's arrays (the struct itself is the caller's). */
void gws_json_free(gws_jdoc_t *doc);

/** @brief Decodes a string token's contents (escapes resolved) into
 *  \p out, which needs room for tok->len bytes. The token must come from a
 *  successful parse (escapes already validated).
 *  @returns the decoded length. */
size_t gws_json_str_decode(const gws_jdoc_t *doc, const gws_jtok_t *tok,
                           char *out);

/** @brief Finds member \p name in the object at token index \p obj.
 *  @returns the value's token index, or 0 if absent (0 is the root, never
 *  a member value). Keys with escapes are compared decoded; of a name
 *  given twice, the last (as the event view). */
uint32_t gws_json_obj_get(const gws_jdoc_t *doc, uint32_t obj,
                          const char *name, size_t namelen);

/** @brief Parses a number token. @returns 0 or -1 (out of range). */
int gws_json_num(const gws_jdoc_t *doc, const gws_jtok_t *tok, double *out);

/** @brief Parses an integer number token (no fraction, no exponent, fits
 *  int64). @returns 0, or -1 if it is not an integer. */
int gws_json_int(const gws_jdoc_t *doc, const gws_jtok_t *tok, int64_t *out);

#endif /* GWS_JSON_H */
