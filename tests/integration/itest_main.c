/* itest_main.c - the integration test runner (gws_itests).
 *
 * Runs every integration suite in one SRunner. Each test forks (Check's
 * default) so a failure or a timeout cannot leave programs behind (see
 * harness.h). CK_RUN_SUITE=<name> / CK_RUN_CASE=<name> select tests,
 * CK_VERBOSITY=verbose lists each one, CK_FORK=no runs in process (gdb),
 * GWS_ITEST_KEEP=1 keeps every test's temp dir and logs,
 * GWS_ITEST_SHARD=K/N runs only the K-th of N shards (1 <= K <= N <= 16):
 * N runners, one per K, run every test once, side by side (the tests wait
 * on timers and brokers far more than they compute; scripts/test.sh).
 *
 * Needs the programs under test in GWS_BIN_DIR: build them first
 * (cmake --build <dir> --target gwsieve gwsieve-devbroker gws_itests).
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "itest_suites.h"

/* GWS_ITEST_SHARD: "K/N" into a 0-based shard and a count.
 * @returns 0, or -1 (told on stderr) if it is not one. */
static int parse_shard(const char *v, int *shard, int *nshards) {
        int k, n, used = 0;
        if (sscanf(v, "%d/%d%n", &k, &n, &used) != 2 || v[used] ||
            n < 1 || n > GWS_IT_MAX_SHARDS || k < 1 || k > n) {
                fprintf(stderr,
                        "gws_itests: GWS_ITEST_SHARD=\"%s\": expected K/N "
                        "with 1 <= K <= N <= %d\n",
                        v, GWS_IT_MAX_SHARDS);
                return -1;
        }
        *shard = k - 1;
        *nshards = n;
        return 0;
}

int main(void) {
        SRunner *sr;
        int nfailed, shard = 0, nshards = 1;
        const char *v = getenv("GWS_ITEST_SHARD");
        int64_t t0 = gws_it_now_ms();

        if (v && *v && parse_shard(v, &shard, &nshards) == -1)
                return 2;

        /* Line-buffered: figures appear as tests print them, and a forked
         * test that _exit()s on failure has nothing left in its buffer. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        sr = srunner_create(gws_it_service_suite(shard, nshards));
        srunner_run_all(sr, CK_ENV);
        nfailed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (nshards > 1)
                printf("[itest] shard %d/%d: total %.1f s, %d failed\n",
                       shard + 1, nshards, (gws_it_now_ms() - t0) / 1000.0,
                       nfailed);
        else
                printf("[itest] total %.1f s, %d failed\n",
                       (gws_it_now_ms() - t0) / 1000.0, nfailed);
        return nfailed != 0;
}
