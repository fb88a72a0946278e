/* fuzz_state_seeds.c - writes the seed snapshots of fuzz_state into a
 * directory: the detector after 0, 1, 40, 200 and 600 synthetic events
 * (fuzz_common.h), so entities of every type, open alerts and heavy-hitter
 * summaries are in the seeds. Generated at each fuzz run (scripts/fuzz.sh)
 * rather than checked in, so they follow the snapshot format.
 *   fuzz_state_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "gwsieve/config.h"
#include "gwsieve/detect.h"

int main(int argc, char **argv) {
        static const int stops[] = {0, 1, 40, 200, 600};
        char errstr[512], id[16], path[4096];
        gws_config_t *cfg = gws_config_new();
        gws_detect_t *d;
        gws_event_t ev;
        gws_score_t sc;
        int i = 0, k, alerts = 0;

        if (argc != 2) {
                fprintf(stderr, "usage: fuzz_state_seeds DIR\n");
                return 2;
        }
        if (gws_config_load_string(cfg, FUZZ_STATE_CONFIG, errstr,
                                   sizeof(errstr)) == -1 ||
            !(d = gws_detect_new(cfg, 0))) {
                fprintf(stderr, "fuzz_state_seeds: setup: %s\n", errstr);
                return 1;
        }
        for (k = 0; k < (int)(sizeof(stops) / sizeof(stops[0])); k++) {
                gws_buf_t b = {0};
                FILE *f;
                for (; i < stops[k]; i++) {
                        fuzz_event(&ev, i, 1767225600000LL + i * 1000LL, id);
                        /* a burst of slow calls from one user: alerts */
                        if (i >= 400 && i % 2 == 0) {
                                ev.latency_ms = 60000;
                                ev.user_id = (gws_str_t){"u1", 2};
                        }
                        gws_detect_event(d, &ev, &sc, fuzz_count_alert,
                                         &alerts);
                }
                snprintf(path, sizeof(path), "%s/state-%d", argv[1],
                         stops[k]);
                if (gws_detect_save(d, &b) == -1 || !(f = fopen(path, "wb")) ||
                    fwrite(b.buf, 1, b.len, f) != b.len || fclose(f)) {
                        fprintf(stderr, "fuzz_state_seeds: %s: cannot write\n",
                                path);
                        return 1;
                }
                printf("%s: %zu bytes\n", path, b.len);
                gws_buf_free(&b);
        }
        printf("%d alerts emitted\n", alerts);
        gws_detect_destroy(d);
        gws_config_destroy(cfg);
        return 0;
}
