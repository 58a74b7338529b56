#!/bin/sh
# What collecting statistics costs, as W1 throughput: builds the library
# twice from this source tree (as configured, and with -DIOP__STATS=0,
# which counts nothing per job), links bench/stats-cost.c to each, runs
# the two alternately REPS times (default 9) and prints the medians and
# their ratio.  Run from the top of the source tree, after ./autogen.sh.
set -eu
REPS=${REPS:-9}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build() {	# build DIR CFLAGS
	mkdir -p "$tmp/$1"
	(cd "$tmp/$1" && "$src/configure" -q --disable-shared \
		--disable-dependency-tracking CFLAGS="-O2 $2" >/dev/null &&
		make -s libiopool.la >/dev/null)
	${CC:-cc} -O2 -I"$src/include" "$src/bench/stats-cost.c" \
		"$tmp/$1/.libs/libiopool.a" -lpthread -o "$tmp/$1/w1"
}

build with ""
build without "-DIOP__STATS=0"
: >"$tmp/with.txt"
: >"$tmp/without.txt"
i=0
while [ "$i" -lt "$REPS" ]; do
	"$tmp/with/w1" >>"$tmp/with.txt"
	"$tmp/without/w1" >>"$tmp/without.txt"
	i=$((i + 1))
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
with=$(median "$tmp/with.txt")
without=$(median "$tmp/without.txt")
echo "W1 jobs/s, median of $REPS alternating runs:"
echo "  with statistics:    $with"
echo "  without statistics: $without"
awk -v a="$with" -v b="$without" \
	'BEGIN { printf "  cost of statistics: %.1f%% of W1 throughput\n", (1 - a / b) * 100 }'
