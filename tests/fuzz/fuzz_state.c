/* fuzz_state.c - libFuzzer target: detector snapshots as a new owner of a
 * partition reads them from the state topic.
 *
 * A snapshot on the topic is checksummed (state.h), but the checksum is
 * not a signature: a record written by a buggy or hostile client must be
 * rejected with a reason, never crash or corrupt a worker. Per input:
 *  - gws_state_decode() of the bytes as a whole record (header checks);
 *  - gws_detect_load() of the bytes as a raw snapshot; when it is
 *    accepted, save -> load -> save must give the same bytes (nothing the
 *    loader accepts is read back differently), and events are fed to the
 *    restored state (its windows, summaries and alerts are used).
 * Seeds: snapshots written by fuzz_state_seeds (scripts/fuzz.sh), under
 * FUZZ_STATE_CONFIG. Run: scripts/fuzz.sh [seconds].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gwsieve/config.h"
#include "gwsieve/detect.h"
#include "gwsieve/state.h"

static gws_config_t *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char errstr[512];
        (void)argc;
        (void)argv;
        cfg = gws_config_new();
        if (gws_config_load_string(cfg, FUZZ_STATE_CONFIG, errstr,
                                   sizeof(errstr)) == -1) {
                fprintf(stderr, "fuzz config: %s\n", errstr);
                abort();
        }
        return 0;
}

/* Loads \p len bytes into a new detector; NULL if refused. */
static gws_detect_t *load(const void *buf, size_t len, int *n) {
        char errstr[256] = "";
        gws_detect_t *d = gws_detect_new(cfg, 0);
        if (!d)
                abort();
        if ((*n = gws_detect_load(d, buf, len, errstr, sizeof(errstr))) <
            0) {
                if (!errstr[0])
                        abort(); /* a refusal always says why */
                gws_detect_destroy(d);
                return NULL;
        }
        return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        gws_buf_t raw = {0}, a = {0}, b = {0};
        gws_state_info_t info;
        gws_detect_t *d, *d2;
        gws_event_t ev;
        gws_score_t sc;
        char errstr[256] = "", id[16];
        int n, n2, i;

        if (gws_state_decode(data, size, "g", "gw.raw", 0, 0, &raw, &info,
                             errstr, sizeof(errstr)) != GWS_STATE_OK &&
            !errstr[0])
                abort();
        gws_buf_free(&raw);

        if (!(d = load(data, size, &n)))
                return 0;
        if (gws_detect_save(d, &a) == -1)
                abort();
        if (!(d2 = load(a.buf, a.len, &n2))) {
                fprintf(stderr, "a saved snapshot was refused\n");
                abort();
        }
        if (gws_detect_save(d2, &b) == -1)
                abort();
        if (n2 != n || a.len != b.len || memcmp(a.buf, b.buf, a.len)) {
                fprintf(stderr,
                        "snapshot not stable: %d entities, %zu bytes, then "
                        "%d, %zu\n",
                        n, a.len, n2, b.len);
                abort();
        }
        /* Use what was restored: around 2026-01-01 (the seeds' time) and
         * a minute apart, so windows close and alerts resolve. */
        for (i = 0; i < 40; i++) {
                fuzz_event(&ev, i, 1767225600000LL + i * 3000, id);
                if (gws_detect_event(d, &ev, &sc, fuzz_count_alert, NULL) <
                    0)
                        abort();
        }
        gws_detect_destroy(d2);
        gws_detect_destroy(d);
        gws_buf_free(&a);
        gws_buf_free(&b);
        return 0;
}
