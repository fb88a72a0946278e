/* suites.h - one Check suite per module; check_main.c runs them all. */
#ifndef GWS_TEST_SUITES_H
#define GWS_TEST_SUITES_H
#include <check.h>

Suite *gws_config_suite(void);
Suite *gws_event_suite(void);
Suite *gws_filter_suite(void);
Suite *gws_detect_suite(void);
Suite *gws_pipeline_suite(void);
Suite *gws_tracker_suite(void);
Suite *gws_util_suite(void);
Suite *gws_redact_suite(void);
Suite *gws_json_suite(void);
Suite *gws_preset_suite(void);
Suite *gws_metrics_suite(void);
Suite *gws_log_suite(void);
Suite *gws_state_suite(void);
Suite *gws_changelog_suite(void);
Suite *gws_placement_suite(void);
Suite *gws_hh_suite(void);

/* Allocation failures (test_pipeline.c, the binary is linked with
 * -Wl,--wrap=realloc): from now on the next \p n reallocs of the calling
 * thread fail (-1: all of them; 0: none, the count kept). The count is
 * reset when \p n is not 0. Disarm (0) before the test ends. */
void test_realloc_fail(int n);
/* @returns how many reallocs failed since test_realloc_fail(n != 0). */
int test_realloc_failed(void);

#endif
