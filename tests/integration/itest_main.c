/* itest_main.c - the integration test runner (gws_itests).
 *
 * Runs every integration suite in one SRunner. Each test forks (Check's
 * default) so a failure or a timeout cannot leave programs behind (see
 * harness.h). CK_RUN_SUITE=<name> / CK_RUN_CASE=<name> select tests,
 * CK_VERBOSITY=verbose lists each one, CK_FORK=no runs in process (gdb),
 * GWS_ITEST_KEEP=1 keeps every test's temp dir and logs.
 *
 * Needs the programs under test in GWS_BIN_DIR: build them first
 * (cmake --build <dir> --target gwsieve gwsieve-devbroker gws_itests).
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "itest_suites.h"

int main(void) {
        SRunner *sr;
        int nfailed;
        int64_t t0 = gws_it_now_ms();

        /* Line-buffered: figures appear as tests print them, and a forked
         * test that _exit()s on failure has nothing left in its buffer. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        sr = srunner_create(gws_it_service_suite());
        srunner_run_all(sr, CK_ENV);
        nfailed = srunner_ntests_failed(sr);
        srunner_free(sr);
        printf("[itest] total %.1f s, %d failed\n",
               (gws_it_now_ms() - t0) / 1000.0, nfailed);
        return nfailed != 0;
}
