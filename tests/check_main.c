/* check_main.c - the unit test runner: every module's suite, one SRunner.
 *
 * CK_RUN_SUITE=<name> / CK_RUN_CASE=<name> select tests, CK_FORK=no runs in
 * process (gdb), CK_VERBOSITY=verbose lists each test. */
#include <stdlib.h>

#include "suites.h"

int main(void) {
        SRunner *sr = srunner_create(gws_util_suite());
        int nfailed;

        srunner_add_suite(sr, gws_json_suite());
        srunner_add_suite(sr, gws_state_suite());
        srunner_add_suite(sr, gws_changelog_suite());
        srunner_add_suite(sr, gws_config_suite());
        srunner_add_suite(sr, gws_event_suite());
        srunner_add_suite(sr, gws_filter_suite());
        srunner_add_suite(sr, gws_detect_suite());
        srunner_add_suite(sr, gws_pipeline_suite());
        srunner_add_suite(sr, gws_tracker_suite());
        srunner_add_suite(sr, gws_redact_suite());
        srunner_add_suite(sr, gws_preset_suite());
        srunner_add_suite(sr, gws_metrics_suite());
        srunner_add_suite(sr, gws_log_suite());
        srunner_add_suite(sr, gws_placement_suite());
        srunner_add_suite(sr, gws_hh_suite());
        srunner_run_all(sr, CK_ENV);
        nfailed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
