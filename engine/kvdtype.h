/*
 * kvdtype.h - conversions between the engine's fp32 compute and the KV cache's storage type.
 *
 * The engine computes in fp32 and keeps K and V in bf16, fp16 or fp32 (enum kvg_dtype).  Every
 * K/V value is rounded to the cache type the moment it is computed and read back from there
 * before attention uses it, so that attention sees exactly the bits a reload from the grid
 * would give it: this is what makes "reloaded prefix" and "recomputed prefix" bit-identical
 * (doc/ENGINE.md, "Exactness").  Rounding is to nearest, ties to even, as the hardware does;
 * NaN stays NaN, overflow goes to infinity.  Written in plain C so that it behaves the same
 * under gcc, clang and the sanitizers; the loops are simple enough to vectorise.
 */
#ifndef LLM_KVDTYPE_H
#define LLM_KVDTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kvgrid.h"

static inline uint32_t llm_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline float llm_bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline uint16_t llm_f32_to_bf16(float f)
{
	uint32_t u = llm_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40); /* quiet NaN, sign kept */
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

static inline float llm_bf16_to_f32(uint16_t h)
{
	return llm_bits_f32((uint32_t)h << 16);
}

static inline uint16_t llm_f32_to_f16(float f)
{
	uint32_t x = llm_f32_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
	x &= 0x7fffffffu;
	if (x >= 0x7f800000u) /* infinity or NaN */
		return sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0u);
	if (x >= 0x477ff000u) /* at or above 65520: rounds to infinity */
		return sign | 0x7c00u;
	if (x < 0x38800000u) { /* below 2^-14: a half subnormal or zero */
		if (x < 0x33000000u)
			return sign;
		uint32_t m = (x & 0x7fffffu) | 0x800000u;
		uint32_t shift = 126u - (x >> 23);
		uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
		if (rem > half || (rem == half && (h & 1u)))
			h++;
		return sign | (uint16_t)h;
	}
	x -= 112u << 23; /* rebias the exponent from 127 to 15 */
	uint32_t h = x >> 13, rem = x & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
		h++; /* a carry into the exponent is the correct result */
	return sign | (uint16_t)h;
}

static inline float llm_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
	if (e == 0) {
		float v = (float)m * 0x1p-24f; /* exact: m < 2^10 */
		return sign ? -v : v;
	}
	if (e == 31)
		return llm_bits_f32(sign | 0x7f800000u | (m << 13));
	return llm_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

/* Bytes of one element of a KV dtype the engine supports, 0 for the others. */
static inline size_t llm_kv_esize(uint32_t dtype)
{
	switch (dtype) {
	case KVG_DTYPE_BF16:
	case KVG_DTYPE_FP16:
		return 2;
	case KVG_DTYPE_FP32:
		return 4;
	default:
		return 0;
	}
}

/* Rounds n floats into dst (of the cache type). */
static inline void llm_kv_encode(uint32_t dtype, void *dst, const float *src, size_t n)
{
	if (dtype == KVG_DTYPE_BF16) {
		uint16_t *d = dst;
		for (size_t i = 0; i < n; i++)
			d[i] = llm_f32_to_bf16(src[i]);
	} else if (dtype == KVG_DTYPE_FP16) {
		uint16_t *d = dst;
		for (size_t i = 0; i < n; i++)
			d[i] = llm_f32_to_f16(src[i]);
	} else {
		memcpy(dst, src, n * 4);
	}
}

/* Widens n values of the cache type into floats. */
static inline void llm_kv_decode(uint32_t dtype, float *dst, const void *src, size_t n)
{
	if (dtype == KVG_DTYPE_BF16) {
		const uint16_t *s = src;
		for (size_t i = 0; i < n; i++)
			dst[i] = llm_bf16_to_f32(s[i]);
	} else if (dtype == KVG_DTYPE_FP16) {
		const uint16_t *s = src;
		for (size_t i = 0; i < n; i++)
			dst[i] = llm_f16_to_f32(s[i]);
	} else {
		memcpy(dst, src, n * 4);
	}
}

#endif
