/* Matrix products with a sparse operand for the fast wavefront (snnhw.model.wavefront), loaded
 * with ctypes by snnhw.model.fused_cells together with wavefront_cells.c.
 *
 * In a spiking LSTM the operands of the recurrent products are mostly zeros: h = s_o·s_c
 * ∈ {−1, 0, +1} is nonzero in about a fifth of its entries in trained models, and ∂L/∂z, zero
 * wherever the surrogate and the clip gate pass nothing, in 15–30 %. The three recurrent
 * products of a training step therefore skip the zeros of one operand:
 *
 *   sp_addmm:  out[r, :] = base[r, :] + Σ_j a[r, j]·b[j, :]    forward z = zx + h·Whᵀ (a = h,
 *              b = Whᵀ), backward ∂h = ext + ∂z·Wh (a = ∂z, b = Wh; base may be NULL: 0)
 *   sp_tmm:    out[j, :] = Σ_r a[r, j]·g[r, :]                 the Wh gradient (a = h, g = ∂z:
 *              out = (∂zᵀ·h)ᵀ)
 *
 * Summation order (fixed, so the result is the same on every instruction set: the vector lanes
 * are columns, never terms of one sum): sp_addmm accumulates, per output element, the products
 * of the nonzero a[r, j] in ascending j starting from 0 and adds base last; sp_tmm walks the
 * rows in blocks of RB (ascending) and, within a block, the rows with a[r, j] ≠ 0 in ascending
 * r. A dense GEMM sums the same terms in another order, so the values agree to rounding (exactly
 * where every partial sum is exact, as with dyadic values). Every product is one IEEE multiply
 * (no contraction, as for the rest of the library), exact where a is ±1.
 *
 * Layout: row-major, contiguous; a [rows, K], b [K, W], base and out [rows, W] (sp_addmm);
 * a [rows, K], g [rows, W], out [K, W] (sp_tmm). Scratch memory comes from malloc: both return
 * 0, or −1 where that fails (nothing written then).
 *
 * Threads: compiled with OpenMP, each runs on up to `threads` threads of the OpenMP pool (PyTorch's
 * own, where the library shares PyTorch's OpenMP runtime: snnhw.model.fused_cells), sp_addmm
 * splitting the rows and sp_tmm the columns j of a. Every output element is still one thread's
 * sum in the order above, so the result does not depend on the number of threads.
 */
#ifndef REAL
#include "fused_common.h"

/* rows per block of sp_tmm (its index lists and the block of g stay in cache) */
#define RB 128
/* vectors per column block: NV vectors of accumulators live in registers */
#define NV 8

#define REAL float
#define VL 16
#define NAME(x) x##_f32
#include __FILE__
#undef REAL
#undef VL
#undef NAME
#define REAL double
#define VL 8
#define NAME(x) x##_f64
#include __FILE__
#undef REAL
#undef VL
#undef NAME

#else

/* A vector of VL values (64 bytes; the compiler splits it where the instruction set is narrower),
 * loaded and stored without an alignment assumption. */
typedef REAL NAME(vec) __attribute__((vector_size(VL * sizeof(REAL)), aligned(sizeof(REAL))));

static inline NAME(vec) NAME(load)(const REAL *p) {
    NAME(vec) v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void NAME(store)(REAL *p, NAME(vec) v) { memcpy(p, &v, sizeof v); }

/* Rows [r0, r1) of sp_addmm, with this thread's scratch lists idx and val (K entries each). */
CLONES void NAME(sp_addmm_rows)(int64_t r0, int64_t r1, int64_t K, int64_t W, const REAL *restrict a,
                                const REAL *restrict b, const REAL *restrict base, REAL *restrict out,
                                int32_t *restrict idx, REAL *restrict val) {
    for (int64_t r = r0; r < r1; r++) {
        const REAL *ar = a + r * K;
        int64_t n = 0;
        for (int64_t j = 0; j < K; j++) { /* branch-free compaction of the nonzero entries */
            idx[n] = (int32_t)j;
            val[n] = ar[j];
            n += ar[j] != 0;
        }
        REAL *o = out + r * W;
        const REAL *br = base != NULL ? base + r * W : NULL;
        int64_t c0 = 0;
        for (; c0 + NV * VL <= W; c0 += NV * VL) {
            NAME(vec) acc[NV];
            for (int i = 0; i < NV; i++)
                acc[i] = (NAME(vec)){0};
            for (int64_t e = 0; e < n; e++) {
                const REAL *w = b + (int64_t)idx[e] * W + c0;
                REAL v = val[e];
                for (int i = 0; i < NV; i++)
                    acc[i] += v * NAME(load)(w + i * VL);
            }
            for (int i = 0; i < NV; i++)
                NAME(store)(o + c0 + i * VL, br != NULL ? NAME(load)(br + c0 + i * VL) + acc[i] : acc[i]);
        }
        for (; c0 < W; c0++) {
            REAL acc = 0;
            for (int64_t e = 0; e < n; e++)
                acc += val[e] * b[(int64_t)idx[e] * W + c0];
            o[c0] = br != NULL ? br[c0] + acc : acc;
        }
    }
}

int64_t NAME(sp_addmm)(int64_t threads, int64_t rows, int64_t K, int64_t W, const REAL *restrict a,
                       const REAL *restrict b, const REAL *restrict base, REAL *restrict out) {
    int64_t nt = threads < 1 ? 1 : threads < rows ? threads : rows > 0 ? rows : 1;
    size_t kk = (size_t)(K > 0 ? K : 1);
    int32_t *idx = malloc(sizeof(int32_t) * kk * (size_t)nt); /* one index list per thread */
    REAL *val = malloc(sizeof(REAL) * kk * (size_t)nt);
    if (idx == NULL || val == NULL) {
        free(idx);
        free(val);
        return -1;
    }
#pragma omp parallel num_threads(nt)
    {
        int64_t t = THREAD, n_t = THREADS;
        NAME(sp_addmm_rows)(rows * t / n_t, rows * (t + 1) / n_t, K, W, a, b, base, out, idx + t * (int64_t)kk,
                            val + t * (int64_t)kk);
    }
    free(idx);
    free(val);
    return 0;
}

/* Columns [j0, j1) of a for sp_tmm: out[j0:j1, :], with the lists offs, vals, cnt of those
 * columns (see sp_tmm). */
CLONES void NAME(sp_tmm_cols)(int64_t j0, int64_t j1, int64_t rows, int64_t K, int64_t W, const REAL *restrict a,
                              const REAL *restrict g, REAL *restrict out, int32_t *restrict offs,
                              REAL *restrict vals, int32_t *restrict cnt) {
    memset(out + j0 * W, 0, sizeof(REAL) * (size_t)((j1 - j0) * W));
    for (int64_t r0 = 0; r0 < rows; r0 += RB) {
        int64_t rb = rows - r0 < RB ? rows - r0 : RB;
        for (int64_t j = j0; j < j1; j++)
            cnt[j] = 0;
        for (int64_t r = 0; r < rb; r++) {
            const REAL *ar = a + (r0 + r) * K;
            for (int64_t j = j0; j < j1; j++) {
                offs[j * RB + cnt[j]] = (int32_t)(r * W);
                vals[j * RB + cnt[j]] = ar[j];
                cnt[j] += ar[j] != 0;
            }
        }
        const REAL *gb = g + r0 * W;
        int64_t c0 = 0;
        for (; c0 + NV * VL <= W; c0 += NV * VL) {
            for (int64_t j = j0; j < j1; j++) {
                REAL *o = out + j * W + c0;
                const int32_t *off = offs + j * RB;
                const REAL *val = vals + j * RB;
                NAME(vec) acc[NV];
                for (int i = 0; i < NV; i++)
                    acc[i] = NAME(load)(o + i * VL);
                for (int32_t e = 0; e < cnt[j]; e++) {
                    REAL v = val[e];
                    for (int i = 0; i < NV; i++)
                        acc[i] += v * NAME(load)(gb + off[e] + c0 + i * VL);
                }
                for (int i = 0; i < NV; i++)
                    NAME(store)(o + i * VL, acc[i]);
            }
        }
        for (; c0 < W; c0++)
            for (int64_t j = j0; j < j1; j++) {
                REAL acc = out[j * W + c0];
                for (int32_t e = 0; e < cnt[j]; e++)
                    acc += vals[j * RB + e] * gb[offs[j * RB + e] + c0];
                out[j * W + c0] = acc;
            }
    }
}

int64_t NAME(sp_tmm)(int64_t threads, int64_t rows, int64_t K, int64_t W, const REAL *restrict a,
                     const REAL *restrict g, REAL *restrict out) {
    /* per column j of a: the offsets r·W (within the block) and values of the rows with
     * a[r, j] ≠ 0, cnt[j] of them */
    int32_t *offs = malloc(sizeof(int32_t) * (size_t)(K * RB + K + 1));
    REAL *vals = malloc(sizeof(REAL) * (size_t)(K * RB + 1));
    if (offs == NULL || vals == NULL) {
        free(offs);
        free(vals);
        return -1;
    }
    int64_t nt = threads < 1 ? 1 : threads < K ? threads : K > 0 ? K : 1;
#pragma omp parallel num_threads(nt)
    {
        int64_t t = THREAD, n_t = THREADS;
        NAME(sp_tmm_cols)(K * t / n_t, K * (t + 1) / n_t, rows, K, W, a, g, out, offs, vals, offs + K * RB);
    }
    free(offs);
    free(vals);
    return 0;
}

#endif
