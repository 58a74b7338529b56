#!/bin/sh
# Build the API fuzzer (fuzz/iopool-fuzz.c with the library's sources,
# clang -fsanitize=fuzzer,address,undefined) and run it for FUZZ_SECONDS
# seconds (default 120) from the committed corpus fuzz/corpus, then print
# how many inputs it executed.
#
#   fuzz/run.sh                 build, then fuzz for FUZZ_SECONDS
#   fuzz/run.sh --build-only    just build
#
# Environment:
#   FUZZ_SECONDS  how long to fuzz (default 120)
#   FUZZ_CC       the compiler (default clang; Debian: clang and
#                 libclang-rt-14-dev provide libFuzzer)
#   FUZZ_OUT      build and work directory (default ./fuzz-out); the
#                 corpus grown there is kept between runs, crashes land
#                 there as crash-* files
#   FUZZ_CONFIG_H a config.h from a configured build tree (make fuzz
#                 passes its own); without it this script configures the
#                 source tree in FUZZ_OUT/cfg first
#   FUZZ_ARGS     more libFuzzer options
# Exit status: 0 when the time ran out with no finding, 1 on a finding
# (the input is written to FUZZ_OUT/crash-*: add it to fuzz/corpus and a
# test to tests/test-regress.c), 77 when no clang with libFuzzer is found.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
cc=${FUZZ_CC:-clang}
out=${FUZZ_OUT:-./fuzz-out}
secs=${FUZZ_SECONDS:-120}
build_only=no
[ "${1:-}" = "--build-only" ] && build_only=yes

mkdir -p "$out"
out=$(cd "$out" && pwd)

probe="$out/probe.c"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
	'{ (void)d; (void)n; return 0; }' >"$probe"
if ! "$cc" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
	echo "fuzz: $cc cannot build a libFuzzer target (Debian: apt-get" \
	     "install clang libclang-rt-14-dev)"
	exit 77
fi

# config.h: the library's sources need the one configure writes.
if [ -n "${FUZZ_CONFIG_H:-}" ]; then
	cfgdir=$(dirname "$FUZZ_CONFIG_H")
else
	cfgdir="$out/cfg"
	if [ ! -f "$cfgdir/config.h" ]; then
		[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh)
		mkdir -p "$cfgdir"
		(cd "$cfgdir" && "$src/configure" -q CC="$cc" >/dev/null)
	fi
fi

echo "fuzz: building $out/iopool-fuzz with $cc"
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -DHAVE_CONFIG_H \
	-I"$cfgdir" -I"$src/include" -I"$src/src" -pthread \
	"$src"/src/*.c "$src/fuzz/iopool-fuzz.c" -o "$out/iopool-fuzz"
[ "$build_only" = yes ] && exit 0

mkdir -p "$out/corpus"
echo "fuzz: running for $secs s from $src/fuzz/corpus"
status=0
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$out/iopool-fuzz" -max_total_time="$secs" -timeout=30 \
	-rss_limit_mb=4096 -print_final_stats=1 \
	-artifact_prefix="$out/" ${FUZZ_ARGS:-} \
	"$out/corpus" "$src/fuzz/corpus" >"$out/fuzz.log" 2>&1 || status=$?
tail -n 30 "$out/fuzz.log"
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log")
echo "fuzz: ${execs:-?} executions in $secs s, exit status $status"
if [ "$status" -ne 0 ]; then
	ls "$out"/crash-* "$out"/timeout-* "$out"/leak-* 2>/dev/null || true
	exit 1
fi
exit 0
