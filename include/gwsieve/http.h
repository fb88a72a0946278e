/* http.h - the operations endpoint (/metrics, /healthz, /readyz) on
 * libmicrohttpd.
 *
 * DESIGN: libmicrohttpd runs its own polling thread and calls the handler
 * there, one request at a time (no thread per connection). The handler
 * must only read state that is safe to read from another thread: the
 * service hands it a metrics snapshot under a mutex and atomics for
 * health. Requests are GET/HEAD only; bodies are small text.
 */
#ifndef GWS_HTTP_H
#define GWS_HTTP_H

#include <stddef.h>

#include "gwsieve/util.h"

typedef struct gws_http_s gws_http_t;

/** Request handler (on the HTTP thread): fills \p body for \p path and
 *  sets \p *ctype (static string). @returns the HTTP status. */
typedef int (gws_http_handler)(void *opaque, const char *path,
                               gws_buf_t *body, const char **ctype);

/** @brief Listens on \p listen ("ADDR:PORT", "[v6]:PORT" or ":PORT";
 *  port 0 picks a free one) and serves \p handler.
 *  @returns the server, or NULL with \p errstr naming the address and
 *           the reason (bad address, port in use, ...). */
gws_http_t *gws_http_start(const char *listen, gws_http_handler *handler,
                           void *opaque, char *errstr, size_t errstr_size);

/** @returns the bound port (useful with port 0). */
int gws_http_port(const gws_http_t *h);

/** @brief Stops the server and frees it. NULL is a no-op. */
void gws_http_stop(gws_http_t *h);

#endif /* GWS_HTTP_H */
