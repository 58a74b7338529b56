/*
 * Suite "bench": the benchmark's system-independent code (bench/
 * workloads.c) does what ../shared/WORKLOADS.md defines.  The expected
 * values were computed separately from the definitions' text (a few lines
 * of Python), not with this code: the pattern word at several offsets,
 * the first offsets of each splitmix64 generator, and how many of W6's
 * and W7's reads repeat a block (2,856 and 777, as WORKLOADS.md says).
 * Verification must reject a wrong byte, a short read and a failed read;
 * percentiles take the nearest-rank index.  M1 (bench/run-m1.c) has
 * exactly 2,000 long jobs in 200,000, one in each hundred, and its
 * short-job percentiles are taken from the 198,000 others.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "workloads.h"

START_TEST(test_bench_pattern_word_known_offsets)
{
	ck_assert_uint_eq(pattern_word(0), 0x4e54931e8f848289ULL);
	ck_assert_uint_eq(pattern_word(8), 0x401060ea89d86331ULL);
	ck_assert_uint_eq(pattern_word(4096), 0xc5f02b133745d289ULL);
	ck_assert_uint_eq(pattern_word(0xffff000), 0xee6ec4f15796f289ULL);
	ck_assert_uint_eq(pattern_word(0xffffff8), 0x84352841ff1075a1ULL);
	ck_assert_uint_eq(pattern_word(0x1e240000), 0x212f134eea908289ULL);
	ck_assert_uint_eq(pattern_word(0x3ffffff8), 0xec408080af1075a1ULL);
}
END_TEST

START_TEST(test_bench_pattern_fill_is_little_endian)
{
	static const unsigned char want0[8] = { 0x89, 0x82, 0x84, 0x8f,
						0x1e, 0x93, 0x54, 0x4e };
	static const unsigned char want8[8] = { 0x31, 0x63, 0xd8, 0x89,
						0xea, 0x60, 0x10, 0x40 };
	unsigned char buf[16];

	pattern_fill(buf, sizeof(buf), 0);
	ck_assert_mem_eq(buf, want0, 8);
	ck_assert_mem_eq(buf + 8, want8, 8);
}
END_TEST

START_TEST(test_bench_splitmix_reference_values)
{
	uint64_t state = 0;

	/* The published first outputs of splitmix64 from seed 0. */
	ck_assert_uint_eq(splitmix_next(&state), 0xe220a8397b1dcdafULL);
	ck_assert_uint_eq(splitmix_next(&state), 0x6e789e6aa1b965f4ULL);
	ck_assert_uint_eq(splitmix_next(&state), 0x06c45d188009454fULL);
}
END_TEST

START_TEST(test_bench_w2_offsets_first_values)
{
	uint64_t s = W2_SEED, w = W2_SEED + 1;

	ck_assert_uint_eq(w2_offset(&s), 0x65ce000);
	ck_assert_uint_eq(w2_offset(&s), 0x356e000);
	ck_assert_uint_eq(w2_offset(&s), 0x9e26000);
	ck_assert_uint_eq(w2_offset(&s), 0xa20a000);
	ck_assert_uint_eq(w2_offset(&w), 0xff81000);
	ck_assert_uint_eq(w2_offset(&w), 0x4563000);
}
END_TEST

START_TEST(test_bench_cold_offsets_first_values)
{
	uint64_t s6 = W6_SEED, s7 = W7_SEED;

	ck_assert_uint_eq(cold_offset(&s6), 0x179a9000);
	ck_assert_uint_eq(cold_offset(&s6), 0x347cb000);
	ck_assert_uint_eq(cold_offset(&s6), 0x7be4000);
	ck_assert_uint_eq(cold_offset(&s6), 0x235000);
	ck_assert_uint_eq(cold_offset(&s7), 0x1f2b8000);
	ck_assert_uint_eq(cold_offset(&s7), 0xfa4b000);
	ck_assert_uint_eq(cold_offset(&s7), 0x208a6000);
	ck_assert_uint_eq(cold_offset(&s7), 0x3f614000);
}
END_TEST

/* Reads among the first @n of the cold generator that repeat a block. */
static unsigned cold_repeats(uint64_t seed, unsigned n)
{
	unsigned char *seen = calloc(COLD_SIZE / BLOCK_SIZE, 1);
	unsigned rep = 0;

	ck_assert_ptr_nonnull(seen);
	for (unsigned i = 0; i < n; i++) {
		uint64_t off = cold_offset(&seed);

		ck_assert_uint_lt(off, COLD_SIZE);
		ck_assert_uint_eq(off % BLOCK_SIZE, 0);
		rep += seen[off / BLOCK_SIZE];
		seen[off / BLOCK_SIZE] = 1;
	}
	free(seen);
	return rep;
}

START_TEST(test_bench_cold_repeats_match_workloads_md)
{
	ck_assert_uint_eq(cold_repeats(W6_SEED, 40000), 2856);
	ck_assert_uint_eq(cold_repeats(W7_SEED, 20000), 777);
}
END_TEST

START_TEST(test_bench_w2_offsets_in_range_aligned)
{
	uint64_t s = W2_SEED;

	for (int i = 0; i < 500000; i++) {
		uint64_t off = w2_offset(&s);

		ck_assert_uint_lt(off, DATA_SIZE);
		ck_assert_uint_eq(off % BLOCK_SIZE, 0);
	}
}
END_TEST

START_TEST(test_bench_percentile_nearest_rank)
{
	ck_assert_uint_eq(pct_index(100000, 500), 49999);
	ck_assert_uint_eq(pct_index(100000, 990), 98999);
	ck_assert_uint_eq(pct_index(100000, 999), 99899);
	ck_assert_uint_eq(pct_index(1, 999), 0);
	ck_assert_uint_eq(pct_index(3, 500), 1);
	ck_assert_uint_eq(pct_index(1000, 999), 998);
}
END_TEST

START_TEST(test_bench_percentile_of_sorted_samples)
{
	enum { N = 100000 };
	int64_t *v = malloc(N * sizeof(*v));
	uint64_t rng = 42;

	ck_assert_ptr_nonnull(v);
	for (int i = 0; i < N; i++)
		v[i] = i + 1;
	for (int i = N - 1; i > 0; i--) {
		int j = (int)(rng_next(&rng) % (uint64_t)(i + 1));
		int64_t t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
	sort_i64(v, N);
	ck_assert_int_eq(v[pct_index(N, 500)], 50000);
	ck_assert_int_eq(v[pct_index(N, 990)], 99000);
	ck_assert_int_eq(v[pct_index(N, 999)], 99900);
	free(v);
}
END_TEST

START_TEST(test_bench_lat_summarize_small)
{
	int64_t ns[3] = { 5000, 1000, 3000 };
	struct lat_summary ls;

	lat_summarize(ns, 3, &ls);
	/* Sorted in place: 1000, 3000, 5000; indices 1, 2 and 2. */
	ck_assert_int_eq(ns[0], 1000);
	ck_assert_int_eq(ns[2], 5000);
	ck_assert_double_eq(ls.p50_us, 3.0);
	ck_assert_double_eq(ls.p99_us, 5.0);
	ck_assert_double_eq(ls.p999_us, 5.0);
	ck_assert_double_eq(ls.mean_us, 3.0);
}
END_TEST

START_TEST(test_bench_m1_long_jobs_one_in_each_hundred)
{
	uint64_t nlong = 0;

	ck_assert(!m1_is_long(0));
	ck_assert(!m1_is_long(98));
	ck_assert(m1_is_long(99));
	ck_assert(!m1_is_long(100));
	ck_assert(m1_is_long(199));
	ck_assert(m1_is_long(199999));
	for (uint64_t i = 0; i < M1_JOBS; i++) {
		nlong += m1_is_long(i);
		/* The one long job of each hundred is its last. */
		if (i % 100 == 99)
			ck_assert_uint_eq(nlong, i / 100 + 1);
	}
	ck_assert_uint_eq(M1_JOBS, 200000);
	ck_assert_uint_eq(nlong, 2000);
	ck_assert_uint_eq(m1_long_count(M1_JOBS), 2000);
	ck_assert_uint_eq(m1_long_count(M1_WARMUP), 100);
	ck_assert_uint_eq(m1_long_count(99), 0);
	ck_assert_uint_eq(m1_long_count(100), 1);
	ck_assert_uint_eq(m1_long_count(199), 1);
	/* The ideal: 2,000 long jobs of 1 ms on 4 workers. */
	ck_assert_double_eq(M1_IDEAL_MS, 2000 * 1.0 / 4);
}
END_TEST

START_TEST(test_bench_m1_short_job_percentiles)
{
	enum { N = 198000 };	/* M1's short jobs */
	int64_t *v = malloc(N * sizeof(*v));
	struct lat_summary ls;
	uint64_t rng = 7;

	ck_assert_uint_eq(M1_JOBS - m1_long_count(M1_JOBS), N);
	ck_assert_uint_eq(pct_index(N, 500), 98999);
	ck_assert_uint_eq(pct_index(N, 990), 196019);
	ck_assert_uint_eq(pct_index(N, 999), 197801);
	/* Samples 1 to N us, shuffled. */
	ck_assert_ptr_nonnull(v);
	for (int i = 0; i < N; i++)
		v[i] = (int64_t)(i + 1) * 1000;
	for (int i = N - 1; i > 0; i--) {
		int j = (int)(rng_next(&rng) % (uint64_t)(i + 1));
		int64_t t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
	lat_summarize(v, N, &ls);
	ck_assert_double_eq(ls.p50_us, 99000.0);
	ck_assert_double_eq(ls.p99_us, 196020.0);
	ck_assert_double_eq(ls.p999_us, 197802.0);
	ck_assert_double_eq(ls.mean_us, 99000.5);
	free(v);
}
END_TEST

/* A 4 KiB block as the file holds it at @off. */
static void block_at(unsigned char *buf, uint64_t off)
{
	pattern_fill(buf, BLOCK_SIZE, off);
}

START_TEST(test_bench_verify_accepts_right_read)
{
	unsigned char buf[BLOCK_SIZE];

	block_at(buf, 0x65ce000);
	ck_assert_int_eq(verify_read(buf, BLOCK_SIZE, BLOCK_SIZE, 0x65ce000),
			 VERIFY_OK);
	/* Only the first word is checked, as WORKLOADS.md says. */
	buf[100] ^= 1;
	ck_assert_int_eq(verify_read(buf, BLOCK_SIZE, BLOCK_SIZE, 0x65ce000),
			 VERIFY_OK);
}
END_TEST

START_TEST(test_bench_verify_rejects_each_wrong_byte)
{
	unsigned char buf[BLOCK_SIZE];

	for (int i = 0; i < 8; i++) {
		block_at(buf, 0x179a9000);
		buf[i] ^= 0x40;
		ck_assert_int_eq(verify_read(buf, BLOCK_SIZE, BLOCK_SIZE,
					     0x179a9000), VERIFY_WORD);
	}
	/* The right data at the wrong offset is wrong too. */
	block_at(buf, 0x179a9000);
	ck_assert_int_eq(verify_read(buf, BLOCK_SIZE, BLOCK_SIZE, 0x179aa000),
			 VERIFY_WORD);
}
END_TEST

START_TEST(test_bench_verify_rejects_short_and_failed_reads)
{
	unsigned char buf[BLOCK_SIZE];

	block_at(buf, 4096);
	ck_assert_int_eq(verify_read(buf, BLOCK_SIZE - 1, BLOCK_SIZE, 4096),
			 VERIFY_SHORT);
	ck_assert_int_eq(verify_read(buf, 0, BLOCK_SIZE, 4096), VERIFY_SHORT);
	ck_assert_int_eq(verify_read(buf, BLOCK_SIZE + 1, BLOCK_SIZE, 4096),
			 VERIFY_SHORT);
	ck_assert_int_eq(verify_read(buf, -EIO, BLOCK_SIZE, 4096),
			 VERIFY_ERROR);
}
END_TEST

/* A path under $TMPDIR for a data file; the caller unlinks it. */
static void tmp_path(char *buf, size_t size)
{
	const char *dir = getenv("TMPDIR");

	snprintf(buf, size, "%s/iopool-test-bench.%ld.dat",
		 dir && *dir ? dir : "/tmp", (long)getpid());
}

/* The file at @path holds the pattern: check words here and there. */
static void check_file_pattern(const char *path, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	unsigned char buf[BLOCK_SIZE];

	ck_assert_int_ge(fd, 0);
	for (uint64_t off = 0; off < size; off += 3 * BLOCK_SIZE + 8) {
		uint64_t at = off & ~(uint64_t)(BLOCK_SIZE - 1);
		size_t len = size - at < BLOCK_SIZE ? size - at : BLOCK_SIZE;

		ck_assert_int_eq(pread(fd, buf, len, (off_t)at), (ssize_t)len);
		ck_assert_int_eq(verify_read(buf, (ssize_t)len, len, at),
				 VERIFY_OK);
	}
	close(fd);
}

START_TEST(test_bench_data_file_created_and_kept)
{
	uint64_t size = 3 * CHUNK_SIZE + 2 * BLOCK_SIZE;
	struct stat st1, st2;
	char path[512];

	tmp_path(path, sizeof(path));
	unlink(path);
	ck_assert_int_eq(data_file_ensure(path, size), 0);
	ck_assert_int_eq(stat(path, &st1), 0);
	ck_assert_uint_eq(st1.st_size, size);
	check_file_pattern(path, size);
	/* The right size: kept as it is. */
	ck_assert_int_eq(data_file_ensure(path, size), 0);
	ck_assert_int_eq(stat(path, &st2), 0);
	ck_assert_uint_eq(st1.st_ino, st2.st_ino);
	/* Another size: written anew. */
	ck_assert_int_eq(truncate(path, 4096), 0);
	ck_assert_int_eq(data_file_ensure(path, size), 0);
	ck_assert_int_eq(stat(path, &st2), 0);
	ck_assert_uint_eq(st2.st_size, size);
	check_file_pattern(path, size);
	unlink(path);
}
END_TEST

START_TEST(test_bench_cache_warm_leaves_all_resident)
{
	uint64_t size = 2 * CHUNK_SIZE;
	char path[512];
	int fd;

	tmp_path(path, sizeof(path));
	ck_assert_int_eq(data_file_ensure(path, size), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(cache_warm(fd, size), 0);
	ck_assert_int_eq(resident_pages(fd, size), size_pages(size));
	close(fd);
	unlink(path);
}
END_TEST

START_TEST(test_bench_workload_names)
{
	ck_assert_int_eq(wl_parse("W1"), 1);
	ck_assert_int_eq(wl_parse("w8"), 8);
	ck_assert_int_eq(wl_parse("W9"), 0);
	ck_assert_int_eq(wl_parse("W0"), 0);
	ck_assert_int_eq(wl_parse("W12"), 0);
	ck_assert_int_eq(wl_parse("x"), 0);
	ck_assert_int_eq(wl_parse("M1"), 9);
	ck_assert_int_eq(wl_parse("m1"), 9);
	ck_assert_int_eq(wl_parse("M2"), 0);
	ck_assert_int_eq(wl_parse("M"), 0);
	ck_assert_int_eq(wl_parse("W"), 0);
	ck_assert_int_eq(wl_parse(""), 0);
	ck_assert_str_eq(wl_defs[WL_M1].name, "M1");
	ck_assert_uint_eq(wl_defs[WL_M1].threads, 4);
	ck_assert_uint_eq(wl_defs[WL_M1].window, 256);
	ck_assert_str_eq(wl_defs[6].name, "W6");
	ck_assert_uint_eq(wl_defs[6].threads, 64);
	ck_assert_uint_eq(wl_defs[1].window, 256);
}
END_TEST

static Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *tc;

	tc = tcase_new("pattern");
	tcase_add_test(tc, test_bench_pattern_word_known_offsets);
	tcase_add_test(tc, test_bench_pattern_fill_is_little_endian);
	suite_add_tcase(s, tc);

	tc = tcase_new("offsets");
	tcase_add_test(tc, test_bench_splitmix_reference_values);
	tcase_add_test(tc, test_bench_w2_offsets_first_values);
	tcase_add_test(tc, test_bench_cold_offsets_first_values);
	tcase_add_test(tc, test_bench_cold_repeats_match_workloads_md);
	tcase_add_test(tc, test_bench_w2_offsets_in_range_aligned);
	suite_add_tcase(s, tc);

	tc = tcase_new("percentile");
	tcase_add_test(tc, test_bench_percentile_nearest_rank);
	tcase_add_test(tc, test_bench_percentile_of_sorted_samples);
	tcase_add_test(tc, test_bench_lat_summarize_small);
	suite_add_tcase(s, tc);

	tc = tcase_new("m1");
	tcase_add_test(tc, test_bench_m1_long_jobs_one_in_each_hundred);
	tcase_add_test(tc, test_bench_m1_short_job_percentiles);
	suite_add_tcase(s, tc);

	tc = tcase_new("verify");
	tcase_add_test(tc, test_bench_verify_accepts_right_read);
	tcase_add_test(tc, test_bench_verify_rejects_each_wrong_byte);
	tcase_add_test(tc, test_bench_verify_rejects_short_and_failed_reads);
	suite_add_tcase(s, tc);

	tc = tcase_new("files");
	tcase_add_test(tc, test_bench_data_file_created_and_kept);
	tcase_add_test(tc, test_bench_cache_warm_leaves_all_resident);
	tcase_add_test(tc, test_bench_workload_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(bench_suite());
}
