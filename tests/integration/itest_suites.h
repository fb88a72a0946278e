/* itest_suites.h - the integration suites; itest_main.c runs them all. */
#ifndef GWS_ITEST_SUITES_H
#define GWS_ITEST_SUITES_H
#include <check.h>

/** Shards at most (GWS_ITEST_SHARD). */
#define GWS_IT_MAX_SHARDS 16

/** `gwsieve run`/`replay` against gwsieve-devbroker (test_service.c):
 *  the tests of shard \p shard (0-based) of \p nshards, balanced by each
 *  test's usual duration; (0, 1) for all of them. */
Suite *gws_it_service_suite(int shard, int nshards);

#endif /* GWS_ITEST_SUITES_H */
