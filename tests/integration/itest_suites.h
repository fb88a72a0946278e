/* itest_suites.h - the integration suites; itest_main.c runs them all. */
#ifndef GWS_ITEST_SUITES_H
#define GWS_ITEST_SUITES_H
#include <check.h>

/** `gwsieve run`/`replay` against gwsieve-devbroker (test_service.c). */
Suite *gws_it_service_suite(void);

#endif /* GWS_ITEST_SUITES_H */
