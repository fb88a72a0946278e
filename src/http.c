/* http.c - the operations endpoint on libmicrohttpd (see http.h). */
#include "gwsieve/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "gwsieve/log.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

struct gws_http_s {
        struct MHD_Daemon *mhd;
        gws_http_handler *handler;
        void *opaque;
        int port;
};

/* libmicrohttpd's own messages go through our logger (the caller reports
 * setup failures with the address in errstr; these are details). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
        char msg[512];
        size_t n;
        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        gws_log(GWS_LOG_DEBUG, "HTTP", "libmicrohttpd: %s", msg);
}

static MHD_Result_t on_request(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
        gws_http_t *h = cls;
        struct MHD_Response *resp;
        gws_buf_t body = {0};
        const char *ctype = "text/plain; charset=utf-8";
        int status;
        MHD_Result_t ret;
        (void)version;
        (void)upload;
        (void)con_cls;
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
                status = MHD_HTTP_METHOD_NOT_ALLOWED;
                gws_buf_puts(&body, "only GET and HEAD\n");
        } else if (*upload_size) {
                *upload_size = 0; /* ignore any body */
                return MHD_YES;
        } else {
                status = h->handler(h->opaque, url, &body, &ctype);
        }
        resp = MHD_create_response_from_buffer(body.len,
                                               body.buf ? body.buf : "",
                                               MHD_RESPMEM_MUST_COPY);
        gws_buf_free(&body);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", ctype);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED) /* RFC 9110: MUST */
                MHD_add_response_header(resp, "Allow", "GET, HEAD");
        ret = MHD_queue_response(conn, (unsigned)status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* Parses "ADDR:PORT", "[V6]:PORT" or ":PORT" into \p ss. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss,
                        socklen_t *sslen) {
        char host[128];
        const char *colon, *hs = listen, *he;
        char *end;
        long port;
        memset(ss, 0, sizeof(*ss));
        if (listen[0] == '[') {
                if (!(he = strchr(listen, ']')) || he[1] != ':')
                        return -1;
                hs = listen + 1;
                colon = he + 1;
        } else {
                if (!(colon = strrchr(listen, ':')))
                        return -1;
                he = colon;
        }
        if ((size_t)(he - hs) >= sizeof(host))
                return -1;
        memcpy(host, hs, (size_t)(he - hs));
        host[he - hs] = '\0';
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
                return -1;
        if (!host[0] || !strcmp(host, "*"))
                strcpy(host, "0.0.0.0");
        if (strchr(host, ':')) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
                if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
                        return -1;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t)port);
                *sslen = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
                if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
                        return -1;
                s4->sin_family = AF_INET;
                s4->sin_port = htons((uint16_t)port);
                *sslen = sizeof(*s4);
        }
        return 0;
}

gws_http_t *gws_http_start(const char *listen, gws_http_handler *handler,
                           void *opaque, char *errstr, size_t errstr_size) {
        struct sockaddr_storage ss;
        socklen_t sslen = 0;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        gws_http_t *h;

        if (parse_listen(listen, &ss, &sslen) == -1) {
                snprintf(errstr, errstr_size,
                         "http.listen \"%s\": expected ADDR:PORT, "
                         "[IPv6]:PORT or :PORT with a numeric address",
                         listen);
                return NULL;
        }
        if (!(h = calloc(1, sizeof(*h)))) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        h->handler = handler;
        h->opaque = opaque;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        errno = 0;
        h->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
        if (!h->mhd) {
                snprintf(errstr, errstr_size,
                         "http.listen \"%s\": cannot listen: %s", listen,
                         errno ? strerror(errno) : "libmicrohttpd failed");
                free(h);
                return NULL;
        }
        info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? info->port : 0;
        return h;
}

int gws_http_port(const gws_http_t *h) {
        return h->port;
}

void gws_http_stop(gws_http_t *h) {
        if (!h)
                return;
        MHD_stop_daemon(h->mhd);
        free(h);
}
