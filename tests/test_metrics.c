/* test_metrics.c - Prometheus exposition helpers and the HTTP endpoint. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gwsieve/http.h"
#include "gwsieve/metrics.h"
#include "suites.h"

START_TEST(labels_are_escaped) {
        gws_buf_t b = {0};
        gws_prom_family(&b, "x_total", "counter", "Things.");
        gws_prom_u64(&b, "x_total",
                     (const char *[]){"a", "q\"u\\o\nte", "b", "2", NULL}, 7);
        gws_prom_u64(&b, "x_total", NULL, 1);
        ck_assert_str_eq(b.buf, "# HELP x_total Things.\n"
                                "# TYPE x_total counter\n"
                                "x_total{a=\"q\\\"u\\\\o\\nte\",b=\"2\"} 7\n"
                                "x_total 1\n");
        gws_buf_free(&b);
}
END_TEST

START_TEST(histogram_is_cumulative) {
        gws_hist_t h;
        gws_buf_t b = {0};
        memset(&h, 0, sizeof(h));
        gws_hist_observe(&h, 1000);        /* 1 us: first bucket */
        gws_hist_observe(&h, 30000);       /* 30 us: le 5e-05 */
        gws_hist_observe(&h, 5000000000u); /* 5 s: +Inf only */
        gws_prom_hist(&b, "lat_seconds", &h);
        ck_assert_ptr_nonnull(strstr(b.buf, "lat_seconds_bucket{le=\"2.5e-06\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(b.buf, "lat_seconds_bucket{le=\"5e-05\"} 2\n"));
        ck_assert_ptr_nonnull(strstr(b.buf, "lat_seconds_bucket{le=\"1\"} 2\n"));
        ck_assert_ptr_nonnull(strstr(b.buf, "lat_seconds_bucket{le=\"+Inf\"} 3\n"));
        ck_assert_ptr_nonnull(strstr(b.buf, "lat_seconds_count 3\n"));
        ck_assert_ptr_nonnull(strstr(b.buf, "lat_seconds_sum 5.000031000\n"));
        gws_buf_free(&b);
}
END_TEST

/* A histogram read while a worker observes (the service sums each
 * worker's with gws_hist_add() for /metrics): its _count must equal its
 * +Inf bucket (Prometheus: "_count ... must be equal to the +Inf
 * bucket"), in every snapshot. */
static gws_hist_t shared_hist;
static volatile int observe_stop;

static void *observe_loop(void *arg) {
        uint64_t ns = 0;
        (void)arg;
        while (!__atomic_load_n(&observe_stop, __ATOMIC_RELAXED))
                gws_hist_observe(&shared_hist, (ns += 7919) % 2000000);
        return NULL;
}

START_TEST(histogram_snapshot_count_is_inf_bucket) {
        pthread_t thr;
        gws_hist_t h;
        uint64_t total = 0;
        long i, bad = -1;
        int k;
        memset(&shared_hist, 0, sizeof(shared_hist));
        observe_stop = 0;
        ck_assert_int_eq(pthread_create(&thr, NULL, observe_loop, NULL), 0);
        for (i = 0; i < 2000000 && bad < 0; i++) {
                memset(&h, 0, sizeof(h));
                gws_hist_add(&h, &shared_hist);
                for (total = 0, k = 0; k <= GWS_HIST_NB; k++)
                        total += h.bucket[k];
                if (total != h.count)
                        bad = i;
        }
        __atomic_store_n(&observe_stop, 1, __ATOMIC_RELAXED);
        pthread_join(thr, NULL);
        ck_assert_msg(bad < 0,
                      "snapshot %ld: _count %llu, +Inf bucket %llu", bad,
                      (unsigned long long)h.count,
                      (unsigned long long)total);
        ck_assert_uint_gt(shared_hist.count, 0);
}
END_TEST

START_TEST(process_metrics) {
        gws_buf_t b = {0};
        double cpu;
        uint64_t rss;
        ck_assert_int_eq(gws_proc_usage(&cpu, &rss), 0);
        ck_assert_uint_gt(rss, 1 << 20);
        ck_assert_int_eq(gws_prom_process(&b), 0);
        ck_assert_ptr_nonnull(strstr(b.buf, "\nprocess_cpu_seconds_total "));
        ck_assert_ptr_nonnull(strstr(b.buf, "\nprocess_resident_memory_bytes "));
        /* a start time after 2020 */
        ck_assert(atof(strstr(b.buf, "\nprocess_start_time_seconds ") + 28) >
                  1.5e9);
        gws_buf_free(&b);
}
END_TEST

static int handler(void *opaque, const char *path, gws_buf_t *body,
                   const char **ctype) {
        (void)opaque;
        *ctype = "text/plain";
        if (!strcmp(path, "/ok")) {
                gws_buf_puts(body, "fine\n");
                return 200;
        }
        gws_buf_puts(body, "nope\n");
        return 404;
}

static int get(int port, const char *req, char *out, size_t size) {
        struct sockaddr_in sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
        size_t len = 0;
        ssize_t n;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq((int)write(fd, req, strlen(req)), (int)strlen(req));
        while (len + 1 < size && (n = read(fd, out + len, size - len - 1)) > 0)
                len += (size_t)n;
        out[len] = '\0';
        close(fd);
        sscanf(out, "HTTP/1.%*d %d", &status);
        return status;
}

/* A server of handler() on a free port of 127.0.0.1: *\p port. */
static gws_http_t *http_on_free_port(int *port) {
        char err[256];
        gws_http_t *h = gws_http_start("127.0.0.1:0", handler, NULL, err,
                                       sizeof(err));
        ck_assert_msg(h != NULL, "%s", err);
        *port = gws_http_port(h);
        ck_assert_int_gt(*port, 0);
        return h;
}

START_TEST(http_serves_and_rejects) {
        char err[256], out[4096];
        int port;
        gws_http_t *h = http_on_free_port(&port);
        ck_assert_int_eq(get(port, "GET /ok HTTP/1.0\r\n\r\n", out,
                             sizeof(out)), 200);
        ck_assert_ptr_nonnull(strstr(out, "\r\n\r\nfine\n"));
        ck_assert_int_eq(get(port, "GET /x HTTP/1.0\r\n\r\n", out,
                             sizeof(out)), 404);
        ck_assert_int_eq(get(port, "POST /ok HTTP/1.0\r\nContent-Length: "
                                   "0\r\n\r\n", out, sizeof(out)), 405);
        gws_http_stop(h);
        /* errors name the address */
        ck_assert_ptr_null(gws_http_start("localhost", handler, NULL, err,
                                          sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "\"localhost\""));
        ck_assert_ptr_null(gws_http_start("300.1.1.1:80", handler, NULL, err,
                                          sizeof(err)));
}
END_TEST

/* RFC 9110 15.5.6: a 405 response MUST carry Allow with the methods the
 * resource supports. HEAD is answered like GET, without the body. */
START_TEST(http_405_names_allowed_methods) {
        char out[4096];
        int port;
        gws_http_t *h = http_on_free_port(&port);
        ck_assert_int_eq(get(port, "DELETE /ok HTTP/1.0\r\n\r\n", out,
                             sizeof(out)), 405);
        ck_assert_msg(strstr(out, "\r\nAllow: GET, HEAD\r\n") != NULL,
                      "405 without Allow: %s", out);
        ck_assert_int_eq(get(port, "HEAD /ok HTTP/1.0\r\n\r\n", out,
                             sizeof(out)), 200);
        ck_assert_ptr_nonnull(strstr(out, "\r\nContent-Length: 5\r\n"));
        ck_assert_ptr_nonnull(strstr(out, "\r\n\r\n"));
        ck_assert_str_eq(strstr(out, "\r\n\r\n"), "\r\n\r\n");
        gws_http_stop(h);
}
END_TEST

START_TEST(http_port_in_use_is_an_error) {
        char err[256];
        char addr[64];
        gws_http_t *a = gws_http_start("127.0.0.1:0", handler, NULL, err,
                                       sizeof(err)), *b;
        ck_assert_ptr_nonnull(a);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", gws_http_port(a));
        b = gws_http_start(addr, handler, NULL, err, sizeof(err));
        ck_assert_ptr_null(b);
        ck_assert_ptr_nonnull(strstr(err, addr));
        gws_http_stop(a);
}
END_TEST

Suite *gws_metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("metrics");
        tcase_add_test(tc, labels_are_escaped);
        tcase_add_test(tc, histogram_is_cumulative);
        tcase_add_test(tc, histogram_snapshot_count_is_inf_bucket);
        tcase_add_test(tc, process_metrics);
        tcase_add_test(tc, http_serves_and_rejects);
        tcase_add_test(tc, http_405_names_allowed_methods);
        tcase_add_test(tc, http_port_in_use_is_an_error);
        suite_add_tcase(s, tc);
        return s;
}
