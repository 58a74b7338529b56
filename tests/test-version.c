/*
 * Suite "version": iop_version() returns "MAJOR.MINOR.PATCH", the same as
 * the header's IOP_VERSION_MAJOR/_MINOR/_PATCH and IOP_VERSION_STRING and
 * as the package version configure was given (PACKAGE_VERSION, AC_INIT),
 * so bumping one of them alone fails here; and the string is static: the
 * same pointer from every call and every thread, a worker's included,
 * with or without a pool.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

START_TEST(test_version_matches_header_and_configure)
{
	char numbers[64];
	const char *v = iop_version();

	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, IOP_VERSION_STRING);
	ck_assert_str_eq(v, PACKAGE_VERSION);
	snprintf(numbers, sizeof(numbers), "%d.%d.%d", IOP_VERSION_MAJOR,
		 IOP_VERSION_MINOR, IOP_VERSION_PATCH);
	ck_assert_str_eq(v, numbers);
}
END_TEST

static ssize_t version_on_worker(void *ctx)
{
	*(const char **)ctx = iop_version();
	return 0;
}

static void *version_on_thread(void *arg)
{
	*(const char **)arg = iop_version();
	return NULL;
}

START_TEST(test_version_static_any_thread)
{
	const char *first = iop_version();
	const char *worker = NULL, *thread = NULL;
	iop_pool *pool = pool_new(1);
	iop_job *job;
	pthread_t t;

	ck_assert_ptr_eq(iop_version(), first);
	job = iop_call(pool, version_on_worker, &worker, NULL, NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await(job), 0);
	ck_assert_ptr_eq(worker, first);
	ck_assert_int_eq(pthread_create(&t, NULL, version_on_thread, &thread),
			 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_eq(thread, first);
	iop_pool_destroy(pool);
	ck_assert_ptr_eq(iop_version(), first);
	ck_assert_str_eq(first, PACKAGE_VERSION);
}
END_TEST

static Suite *version_suite(void)
{
	Suite *s = suite_create("version");
	TCase *tc = tcase_new("version");

	tcase_add_test(tc, test_version_matches_header_and_configure);
	tcase_add_test(tc, test_version_static_any_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(version_suite());
}
