/*
 * The POSIX cksum CRC: polynomial 0x04C11DB7, most significant bit first,
 * starting from 0; the length follows the data, least significant byte
 * first, and the result is complemented.  crc_table[k][i] is the CRC of
 * byte i followed by k zero bytes, so that eight bytes are folded in with
 * eight independent lookups (slicing-by-8, as coreutils does): one lookup
 * per byte would make the main thread, not the disk, the bottleneck.
 */
#include "crc.h"

static uint32_t crc_table[8][256];

void cksum_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = (uint32_t)i << 24;

		for (int bit = 0; bit < 8; bit++)
			c = c & 0x80000000u ? c << 1 ^ 0x04C11DB7u : c << 1;
		crc_table[0][i] = c;
	}
	for (int k = 1; k < 8; k++)
		for (unsigned i = 0; i < 256; i++) {
			uint32_t c = crc_table[k - 1][i];

			crc_table[k][i] = c << 8 ^ crc_table[0][c >> 24];
		}
}

static uint32_t crc_byte(uint32_t crc, unsigned char b)
{
	return crc << 8 ^ crc_table[0][(crc >> 24 ^ b) & 0xff];
}

uint32_t cksum_update(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (; n >= 8; p += 8, n -= 8) {
		uint32_t a = crc ^ ((uint32_t)p[0] << 24 |
				    (uint32_t)p[1] << 16 |
				    (uint32_t)p[2] << 8 | p[3]);

		crc = crc_table[7][a >> 24] ^ crc_table[6][a >> 16 & 0xff] ^
		      crc_table[5][a >> 8 & 0xff] ^ crc_table[4][a & 0xff] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		      crc_table[1][p[6]] ^ crc_table[0][p[7]];
	}
	for (; n > 0; p++, n--)
		crc = crc_byte(crc, *p);
	return crc;
}

uint32_t cksum_finish(uint32_t crc, uint64_t len)
{
	for (; len > 0; len >>= 8)
		crc = crc_byte(crc, len & 0xff);
	return ~crc;
}
