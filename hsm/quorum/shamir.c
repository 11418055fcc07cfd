/* Shamir's secret sharing over GF(256) (shamir.h). */
#include "shamir.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

uint8_t gf256_add(uint8_t a, uint8_t b)
{
	return a ^ b;
}

/* Russian-peasant multiplication, reduced by 0x11b: eight rounds whatever the operands, and
 * masks instead of branches, so the time says nothing about a or b. */
uint8_t gf256_mul(uint8_t a, uint8_t b)
{
	unsigned r = 0, x = a, y = b;

	for (int i = 0; i < 8; i++) {
		r ^= x & (0u - (y & 1u));
		x = (x << 1) ^ (0x11bu & (0u - ((x >> 7) & 1u)));
		y >>= 1;
	}
	return (uint8_t)r;
}

/* a^254 = a^-1 in GF(256)*: a fixed chain of squarings and multiplies (0 maps to 0). */
uint8_t gf256_inv(uint8_t a)
{
	uint8_t a2 = gf256_mul(a, a);    /* a^2 */
	uint8_t a3 = gf256_mul(a2, a);   /* a^3 */
	uint8_t a6 = gf256_mul(a3, a3);  /* a^6 */
	uint8_t a7 = gf256_mul(a6, a);   /* a^7 */
	uint8_t a14 = gf256_mul(a7, a7); /* a^14 */
	uint8_t a15 = gf256_mul(a14, a); /* a^15 */
	uint8_t a30 = gf256_mul(a15, a15);
	uint8_t a31 = gf256_mul(a30, a);
	uint8_t a62 = gf256_mul(a31, a31);
	uint8_t a63 = gf256_mul(a62, a);
	uint8_t a126 = gf256_mul(a63, a63);
	uint8_t a127 = gf256_mul(a126, a);

	return gf256_mul(a127, a127); /* a^254 */
}

uint8_t gf256_div(uint8_t a, uint8_t b)
{
	return gf256_mul(a, gf256_inv(b));
}

int shamir_split(const uint8_t *secret, size_t len, unsigned m, unsigned n, uint8_t **shares,
                 const uint8_t *coef)
{
	uint8_t c[SHAMIR_MAX_SHARES];

	if (!secret || !shares || len == 0 || m < 2 || m > n || n > SHAMIR_MAX_SHARES)
		return -1;
	for (size_t j = 0; j < len; j++) {
		/* c[k - 1] is the coefficient of x^k, k = 1..m-1; the constant is the secret. */
		if (coef)
			memcpy(c, coef + j * (m - 1), m - 1);
		else if (RAND_priv_bytes(c, (int)(m - 1)) != 1) {
			OPENSSL_cleanse(c, sizeof(c));
			return -1;
		}
		for (unsigned i = 0; i < n; i++) {
			uint8_t x = (uint8_t)(i + 1), y = 0;
			/* Horner: ((c[m-2] x + c[m-3]) x + ...) x + secret */
			for (unsigned k = m - 1; k >= 1; k--)
				y = gf256_mul(gf256_add(y, c[k - 1]), x);
			shares[i][j] = gf256_add(y, secret[j]);
		}
	}
	OPENSSL_cleanse(c, sizeof(c));
	return 0;
}

int shamir_combine(const uint8_t *xs, const uint8_t *const *ys, unsigned k, size_t len,
                   uint8_t *secret)
{
	uint8_t basis[SHAMIR_MAX_SHARES];

	if (!xs || !ys || !secret || k == 0 || k > SHAMIR_MAX_SHARES)
		return -1;
	for (unsigned i = 0; i < k; i++) {
		if (xs[i] == 0)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (xs[i] == xs[j])
				return -1;
	}
	/* The Lagrange basis at 0: l_i(0) = prod_{j != i} x_j / (x_j - x_i); subtraction is
	 * addition in GF(2^8). The x coordinates are public (the share's index). */
	for (unsigned i = 0; i < k; i++) {
		uint8_t num = 1, den = 1;
		for (unsigned j = 0; j < k; j++) {
			if (j == i)
				continue;
			num = gf256_mul(num, xs[j]);
			den = gf256_mul(den, gf256_add(xs[j], xs[i]));
		}
		basis[i] = gf256_div(num, den);
	}
	for (size_t b = 0; b < len; b++) {
		uint8_t s = 0;
		for (unsigned i = 0; i < k; i++)
			s = gf256_add(s, gf256_mul(ys[i][b], basis[i]));
		secret[b] = s;
	}
	return 0;
}
