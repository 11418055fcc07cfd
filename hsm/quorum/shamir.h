/*
 * Shamir's secret sharing over GF(256), byte by byte (as HashiCorp Vault's shamir package and
 * SLIP-0039 do): the field is GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (AES's), each secret byte
 * is the constant term of its own random polynomial of degree threshold-1, and share i is the
 * polynomials evaluated at x = i (1..255). Any threshold shares give the secret back by
 * Lagrange interpolation at x = 0; fewer say nothing about it.
 *
 * Every operation on secret values runs in time independent of them: the multiply has no
 * table and no branch on its operands, the inverse is a fixed chain of multiplies.
 */
#ifndef HSMCA_SHAMIR_H
#define HSMCA_SHAMIR_H

#include <stddef.h>
#include <stdint.h>

#define SHAMIR_MAX_SHARES 255

uint8_t gf256_add(uint8_t a, uint8_t b);
uint8_t gf256_mul(uint8_t a, uint8_t b);
/* The multiplicative inverse (a^254); 0 for 0. */
uint8_t gf256_inv(uint8_t a);
/* a / b; 0 when b is 0 (callers never divide by 0: x coordinates are distinct). */
uint8_t gf256_div(uint8_t a, uint8_t b);

/* Split len bytes of secret into n shares of len bytes, shares[i] for x = i + 1, any m of
 * which recombine (2 <= m <= n <= SHAMIR_MAX_SHARES). coef, when not NULL, gives the
 * polynomials' other coefficients (len * (m - 1) bytes: byte j's coefficient of x^k at
 * [j * (m - 1) + k - 1]) instead of random ones: for known-answer tests only.
 * 0, or -1 (bad arguments, no randomness). Wipes its own copies of the coefficients. */
int shamir_split(const uint8_t *secret, size_t len, unsigned m, unsigned n, uint8_t **shares,
                 const uint8_t *coef);

/* Recombine k shares (x coordinates xs[i], distinct and nonzero; ys[i] of len bytes) into
 * secret (len bytes). 0, or -1 when an x is 0 or repeated. With fewer shares than the
 * threshold the result is a wrong secret, not an error: the caller checks. */
int shamir_combine(const uint8_t *xs, const uint8_t *const *ys, unsigned k, size_t len,
                   uint8_t *secret);

#endif
