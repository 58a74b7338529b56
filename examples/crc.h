/*
 * crc: the CRC that POSIX cksum(1) prints, for the examples (readfiles.c,
 * legacy-sync.c, and the event-loop examples through sumfiles.c).
 * Any thread may call these once cksum_init() has returned.
 */
#ifndef EXAMPLES_CRC_H
#define EXAMPLES_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Fill the tables.  Call once, before any other cksum_* call. */
void cksum_init(void);

/* Fold @n bytes at @p into @crc, which is 0 at the start of a file. */
uint32_t cksum_update(uint32_t crc, const void *p, size_t n);

/* The value cksum prints for a file of @len bytes whose CRC is @crc. */
uint32_t cksum_finish(uint32_t crc, uint64_t len);

#endif /* EXAMPLES_CRC_H */
