/* redact.h - secrets and PII out of every output string.
 *
 * Built-in detectors are hand-written scanners (one pass over the text:
 * 16 bytes at a time, SSE2, the few positions where a detector can start
 * are found, and a text shorter than every enabled detector's shortest
 * match is only searched for an e-mail's '@'), so a clean string costs a
 * few instructions per 16 bytes; only custom patterns use
 * PCRE2 (JIT-compiled, UTF mode with PCRE2_MATCH_INVALID_UTF: text that is
 * not UTF-8 is matched around its invalid bytes). Callers pass DECODED
 * text: JSON escapes must be resolved first ("\u0073k-..." is "sk-..."),
 * which record.c does.
 *
 * Detectors (each match replaced by "[REDACTED:<kind>]"):
 *   openai_key     sk-, sk-proj-, sk-svcacct-, sk-admin- + >= 20 [A-Za-z0-9_-]
 *   anthropic_key  sk-ant- + >= 20 [A-Za-z0-9_-]
 *   aws_access_key AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA + 16 [A-Z0-9]
 *   google_api_key AIza + 35 [A-Za-z0-9_-]
 *   github_token   ghp_|gho_|ghu_|ghs_|ghr_ + >= 36 [A-Za-z0-9];
 *                  github_pat_ + >= 22 [A-Za-z0-9_]
 *   slack_token    xoxa-|xoxb-|xoxp-|xoxr-|xoxs-|xoxe-|xapp- + >= 10
 *                  [A-Za-z0-9-]
 *   stripe_key     sk_live_|sk_test_|rk_live_|rk_test_ + >= 20 [A-Za-z0-9]
 *   huggingface_token hf_ + >= 30 [A-Za-z0-9]
 *   bearer_token   Bearer (any case) + spaces + >= 16 token chars (the
 *                  word "Bearer " is kept, the token replaced)
 *   basic_auth     Basic (any case) + spaces + >= 8 base64 chars that
 *                  decode to user:password (RFC 7617: a ':' in the
 *                  first 192 bytes); "Basic " is kept
 *   url_credential the value of a credential parameter of a query string
 *                  ('?' or '&', then api_key, apikey, api-key, key,
 *                  access_token, token, auth, auth_token, password,
 *                  passwd, pwd, secret, client_secret, sig, signature,
 *                  subscription-key, x-amz-signature, x-amz-credential
 *                  or x-amz-security-token in any case, '=', >= 6
 *                  characters up to '&', '#', a space, a quote, '<',
 *                  '>' or '\\'); the name is kept; and the password of a
 *                  URL's userinfo (scheme://user:password@host: the
 *                  user and host kept)
 *   jwt            eyJ... three base64url parts (>= 10 chars each) by dots
 *   private_key    -----BEGIN ... PRIVATE KEY----- (or OpenPGP's PRIVATE
 *                  KEY BLOCK-----) through its END line
 *                  (to the end of the text if the END is missing)
 *   email          local@domain.tld (tld >= 2 letters, punycode, or
 *                  >= 2 characters beyond ASCII); local part and labels
 *                  may hold UTF-8 letters of any script (RFC 6531/6532:
 *                  "jäne@bücher.de", "用户@例子.广告"), not the
 *                  punctuation around addresses (typographic quotes,
 *                  CJK brackets and full stops)
 *   card_number    13-19 digits, single spaces/dashes allowed between
 *                  digits, Luhn-valid
 *   ssn            a US social security number, 3-2-4 digits by '-'
 *                  (area not 000, 666 or 9xx, group not 00, serial not
 *                  0000), not part of a longer hyphenated number
 *   phone          a phone number in international form: '+', a country
 *                  code 1-9, 8 to 15 digits in all, in groups by single
 *                  spaces, '-' or '.', one maybe in parentheses ("+1
 *                  (415) 555-0100"); national forms ("(415) 555-0100")
 *                  are not told from other numbers and stay
 * Every detector requires a boundary before the match (not a letter or
 * digit), so look-alikes inside longer words stay untouched ("task-1",
 * "skeleton", "xAKIA...", "user@localhost", order numbers failing Luhn).
 *
 * A gws_redact_t is immutable after gws_redact_new(): share it across
 * threads; each thread needs its own gws_redact_scratch_t.
 */
#ifndef GWS_REDACT_H
#define GWS_REDACT_H

#include <stddef.h>
#include <stdint.h>

#include "gwsieve/util.h"

typedef struct gws_redact_s gws_redact_t;
typedef struct gws_redact_scratch_s gws_redact_scratch_t;

typedef enum {
        GWS_RK_OPENAI_KEY,
        GWS_RK_ANTHROPIC_KEY,
        GWS_RK_AWS_ACCESS_KEY,
        GWS_RK_GOOGLE_API_KEY,
        GWS_RK_GITHUB_TOKEN,
        GWS_RK_SLACK_TOKEN,
        GWS_RK_STRIPE_KEY,
        GWS_RK_HUGGINGFACE_TOKEN,
        GWS_RK_BEARER,
        GWS_RK_BASIC_AUTH,
        GWS_RK_URL_CREDENTIAL,
        GWS_RK_JWT,
        GWS_RK_PRIVATE_KEY,
        GWS_RK_EMAIL,
        GWS_RK_CARD,
        GWS_RK_SSN,
        GWS_RK_PHONE,
        GWS_RK_CUSTOM,
        GWS_RK_IP, /**< redact.ip_truncate: a client_ip that is no address
                    *   (not a detector: no redact.builtins name) */
        GWS_RK_FIELD, /**< redact.fields: a member's value replaced by its
                       *   name (not a detector either) */
        GWS_RK__CNT
} gws_redact_kind_t;

/** @returns "openai_key", ..., "card_number", "custom", "ip", "field". */
const char *gws_redact_kind_name(gws_redact_kind_t k);

/** @brief Builds a redactor.
 *  @param builtins NULL for all built-ins, else a NULL-terminated list of
 *         kind names to enable (an unknown name is an error).
 *  @param custom_names, custom_patterns \p custom_cnt named PCRE2 patterns.
 *  @returns NULL with \p errstr naming the detector or pattern (and the
 *           PCRE2 error offset). */
gws_redact_t *gws_redact_new(const char *const *builtins,
                             const char *const *custom_names,
                             const char *const *custom_patterns,
                             int custom_cnt, char *errstr, size_t errstr_size);

/** Default of gws_redact_set_match_limit() (redact.custom_match_limit):
 *  PCRE2's own is 10M, ~20 ms of a worker for one 4 KB string that makes
 *  a pattern such as (a+)+$ backtrack; 100k bounds that to ~0.2 ms, and
 *  the patterns measured over 100 KB texts needed 32 at most. */
#define GWS_REDACT_MATCH_LIMIT 100000
/** The largest JIT stack of a scratch's custom matches (PCRE2's default
 *  is 32 KB of the machine stack: a repetition of alternatives over a
 *  token of ~2000 characters ran out, and failed closed). */
#define GWS_REDACT_JIT_STACK (1024 * 1024)

/** @brief Sets the PCRE2 match limit of the custom patterns (0: the
 *  default, GWS_REDACT_MATCH_LIMIT), for scratches created after the call.
 *  A match that reaches it, or the JIT stack's limit, fails closed: the
 *  rest of the string is redacted and counted as one custom redaction,
 *  and a warning names the pattern (the first time, then at each power of
 *  two of its failures). @locality before the redactor is shared. */
void gws_redact_set_match_limit(gws_redact_t *r, uint32_t limit);

/** @brief Frees \p r. NULL is a no-op. */
void gws_redact_destroy(gws_redact_t *r);

/** @brief Per-thread scratch (PCRE2 match data and, with custom patterns,
 *  a match context with the match limit and a JIT stack that grows up to
 *  GWS_REDACT_JIT_STACK; buffers). \p r may be NULL (no custom patterns).
 *  @returns NULL on allocation failure. */
gws_redact_scratch_t *gws_redact_scratch_new(const gws_redact_t *r);

/** @brief Frees \p s. NULL is a no-op. */
void gws_redact_scratch_destroy(gws_redact_scratch_t *s);

/** @brief Redacts \p len bytes of decoded text. When nothing matches,
 *  returns 0 and writes nothing; otherwise appends the redacted text to
 *  \p out, adds to \p counts (may be NULL) and returns the number of
 *  redactions. @returns -1 on allocation failure. */
int gws_redact_text(const gws_redact_t *r, gws_redact_scratch_t *s,
                    const char *text, size_t len, gws_buf_t *out,
                    uint64_t counts[GWS_RK__CNT]);

/** @brief gws_redact_text() for bytes that did not parse as JSON but may
 *  hold JSON escapes (a dead letter's payload): the built-in detectors and
 *  the custom patterns match the text with its escapes decoded (\n, \t,
 *  \", \\, ..., \uXXXX and surrogate pairs; a lone surrogate or a cut
 *  escape stays as its bytes), so "\nsk-..." is a key at a word start and
 *  "\u0041CCT-1" is "ACCT-1". A match replaces the bytes that spell it,
 *  whole escapes (never half of one); the bytes around the redactions are
 *  kept as they are. Includes the prefilter (gws_redact_maybe()). Same
 *  returns. */
int gws_redact_text_escaped(const gws_redact_t *r, gws_redact_scratch_t *s,
                            const char *text, size_t len, gws_buf_t *out,
                            uint64_t counts[GWS_RK__CNT]);

/** @brief 1 if the \p len bytes at \p digits are a payment card number
 *  as card_number finds one in text, written without separators (13 to
 *  19 digits and nothing else, an issuer prefix, Luhn), and card_number
 *  is enabled; else 0. For the numbers of a JSON document: a card
 *  written as a number ("pan": 4111111111111111). */
int gws_redact_card_digits(const gws_redact_t *r, const char *digits,
                           size_t len);

/** @returns 1 if \p text may contain something to redact (a cheap
 *  prefilter: 0 guarantees gws_redact_text() would find nothing). */
int gws_redact_maybe(const gws_redact_t *r, const char *text, size_t len);

/** @brief Truncates the addresses of a client_ip value (redact.ip_truncate),
 *  failing closed: IPv4 a.b.c.d -> a.b.c.0 (/24); IPv6 -> its first 48
 *  bits and "::" (/48), except IPv4-mapped ::ffff:a.b.c.d ->
 *  ::ffff:a.b.c.0 (the IPv4 client's /24) and 6to4 2002:AABB:CCDD:: ->
 *  2002:AABB:CC00:: (its /48 is the IPv4 address a.b.c.d: to its /24).
 *  Also read: a port after an
 *  IPv4 address ("1.2.3.4:5678") or a bracketed IPv6 one
 *  ("[2001:db8::1]:443", "[2001:db8::1]"), dropped with the brackets; an
 *  IPv6 zone ("fe80::1%eth0"), dropped; a comma-separated list
 *  (X-Forwarded-For), each element on its own, the commas and the spaces
 *  around elements kept. An element that is none of these (a host name,
 *  "unknown", a NUL byte, ...) becomes "[REDACTED:ip]"; an empty one stays
 *  empty. \p ip is decoded text (JSON escapes resolved).
 *  @returns the number of elements replaced (>= 0), with the result
 *  appended to \p out, or -1 on allocation failure (\p out may then hold
 *  a partial append). */
int gws_redact_ip_truncate(const char *ip, size_t len, gws_buf_t *out);

/** @brief The address literals of free text truncated (redact.ip_truncate
 *  on a dead letter's payload), as gws_redact_ip_truncate() does, the
 *  text around them kept: a run of [0-9A-Fa-f:.] not glued to a word
 *  (after a letter only past a colon: "host:1.2.3.4"), trailing dots (and
 *  one colon) left out. IPv4: four dot-separated groups of 1-3 digits
 *  (a fifth may follow if it does not start with a digit: "1.2.3.4.nip.io"
 *  is truncated, "1.2.3.4.5" stays), in each colon-separated piece (the
 *  port of "1.2.3.4:80" stays); one inet_pton() refuses ("300.1.2.3",
 *  "01.2.3.4") becomes "[REDACTED:ip]". IPv6: two colons or more, read by
 *  inet_pton() (an embedded IPv4 too); one it cannot read becomes
 *  "[REDACTED:ip]" when it has "::" or six groups or more (a MAC address
 *  too), else stays ("12:00:00"). \p escaped: \p text may hold JSON
 *  escapes (bytes that did not parse), matched decoded as
 *  gws_redact_text_escaped() does. "[REDACTED:ip]" adds to
 *  counts[GWS_RK_IP] (\p counts may be NULL; truncations are not
 *  redactions).
 *  @returns the addresses changed, with the result appended to \p out;
 *  0 when none (\p out untouched), or -1. */
int gws_redact_ip_text(gws_redact_scratch_t *sc, const char *text,
                       size_t len, int escaped, gws_buf_t *out,
                       uint64_t counts[GWS_RK__CNT]);

#endif /* GWS_REDACT_H */
