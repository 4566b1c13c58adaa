/* Fused neuron and cell updates of one wavefront diagonal of a spiking LSTM layer (forward and
 * backward), for snnhw.model.fused_cells (loaded with ctypes; compiled on first use).
 *
 * The values are those of snnhw.model.wavefront (the PyTorch path) operation by operation:
 * every product, sum and comparison is the same IEEE operation in the same order, compiled
 * without floating-point contraction (-ffp-contract=off), so membranes and spikes agree bit for
 * bit; only the parameter-gradient sums are accumulated in another order (per column within a
 * diagonal in the tensor's precision, then across columns in double precision).
 *
 * Layout (see wavefront.py): a diagonal is T·B rows, row r = j·B + b holds slot j (t = T−1−j);
 * the previous membrane U(n, t−1) of row r is row r + B of the previous diagonal (0 when
 * r + B ≥ T·B, i.e. t = 0); c(n−1, t) is row r of the previous diagonal. Gate columns of z and
 * ∂z ([T·B, 4H]): binary LIF gates first (nb of them: f, o or f, i, o), the clip gate at nb·H,
 * and, when i is the non-spiking gate (nb = 2), the ternary g at 3H.
 *
 * Only the membranes (binary gates, c neuron, g neuron), the clip-gate input z/θ, the cell state
 * and the sign of g's input are stored; spikes and post-reset membranes are recomputed.
 *
 * Constants (REAL, in the tensor dtype): [0, 4·nb): θ, λ, γ/θ, γ/θ² per binary gate;
 * then θ_v, 1/θ_v, the clip gate's lower bound; then 10 per ternary neuron (c, then g):
 * θ+, θ−, −θ−, λ, θ+/(2T), θ−/(2T), γ/θ+, γ/θ+², γ/θ−, γ/θ−².
 *
 * Per-diagonal sums (double, 24): b_s[3], b_wu[3], b_lam[3] (per binary gate), v_q, then
 * 7 per ternary neuron (c, then g): Σ∂U'·s+, Σ∂U'·s−, Σw+·U, Σw−·U, Σ∂U·U'(t−1), Σ∂y·[y>0],
 * Σ∂y·[y<0] (wavefront.TERNARY_SUMS).
 *
 * Threads: compiled with OpenMP, wf_backward splits the columns between up to `threads` threads
 * (snnhw.model.fused_cells.kernel_threads); each per-column sum still runs over the rows in
 * order and the columns are summed by one thread, so the values do not depend on the threads.
 * wf_forward runs on the calling thread.
 */
#ifndef REAL
#include "fused_common.h"

#define NACC 24
#define RESTRICT restrict
/* the iterations of each inner loop (one column each) touch disjoint elements */
#define IVDEP _Pragma("GCC ivdep")

static inline uint16_t to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest even (no NaN here) */
    return (uint16_t)(u >> 16);
}

#define REAL float
#define FABS __builtin_fabsf
#define NAME(x) x##_f32
#include __FILE__
#undef REAL
#undef FABS
#undef NAME
#define REAL double
#define FABS __builtin_fabs
#define NAME(x) x##_f64
#include __FILE__
#undef REAL
#undef FABS
#undef NAME

#else

/* U' = U − s+·θ+ + s−·θ− of a ternary neuron (the PyTorch path's two addcmul steps). */
static inline REAL NAME(tern_reset)(REAL u, const REAL *k) {
    REAL sp = (REAL)(u > k[0]);
    REAL sn = (REAL)(u < k[2]);
    REAL t = u + (-sp) * k[0];
    return t + sn * k[1];
}

/* The shifted input y + [y > 0]·θ+/(2T) − [y < 0]·θ−/(2T) of a ternary neuron. */
static inline REAL NAME(tern_shift)(REAL y, const REAL *k, REAL shift) {
    REAL pos = (REAL)(y > 0) * shift;
    REAL neg = (REAL)(y < 0) * shift;
    REAL t = y + pos * k[4];
    return t + (-neg) * k[5];
}

/* max(0, γ/θ − |u − θ|·γ/θ²) */
static inline REAL NAME(tri)(REAL u, REAL th, REAL peak, REAL slope) {
    REAL d = FABS(u - th); /* (|−0| = +0: the same sum below) */
    REAL v = peak + (-d) * slope;
    return v > 0 ? v : (REAL)0;
}

static inline REAL NAME(clip)(REAL q, REAL lo) {
    REAL v = q < lo ? lo : q;
    return v > 1 ? (REAL)1 : v;
}

CLONES void NAME(wf_forward)(int64_t r0, int64_t rows, int64_t H, int64_t B, int64_t TB, int64_t nb, int64_t shift,
                             const REAL *RESTRICT cst, const REAL *RESTRICT z, const REAL *RESTRICT zrow,
                             const REAL *RESTRICT ub_prev, REAL *RESTRICT ub, REAL *RESTRICT q,
                             const REAL *RESTRICT c_prev, REAL *RESTRICT c, const REAL *RESTRICT cu_prev,
                             REAL *RESTRICT cu, const REAL *RESTRICT gu_prev, REAL *RESTRICT gu,
                             REAL *RESTRICT gsgn, REAL *RESTRICT h, uint16_t *RESTRICT hb) {
    const int64_t H4 = 4 * H, bH = nb * H;
    const REAL *th_b = cst, *lam_b = cst + nb;
    const REAL th_v = cst[4 * nb], lo_v = cst[4 * nb + 2];
    const REAL *kc = cst + 4 * nb + 3, *kg = kc + 10;
    const REAL sh = (REAL)(shift != 0);
    REAL sb[3 * H];
    for (int64_t r = r0; r < r0 + rows; r++) {
        const int has_prev = r + B < TB;
        const REAL *RESTRICT zr = z + r * H4;
        const REAL *RESTRICT ubp_r = (ub_prev && has_prev) ? ub_prev + (r + B) * bH : zrow;
        const REAL *RESTRICT cup_r = (cu_prev && has_prev) ? cu_prev + (r + B) * H : zrow;
        const REAL *RESTRICT gup_r = (gu_prev && has_prev) ? gu_prev + (r + B) * H : zrow;
        const REAL *RESTRICT cin_r = c_prev ? c_prev + r * H : zrow;
        REAL *RESTRICT ub_r = ub + r * bH;
        for (int64_t g = 0; g < nb; g++) {
            const REAL th = th_b[g], lam = lam_b[g];
            IVDEP
            for (int64_t i = 0; i < H; i++) {
                const int64_t col = g * H + i;
                REAL u0 = ubp_r[col];
                REAL prev = u0 - (REAL)(u0 > th) * th;
                REAL u = zr[col] + prev * lam;
                ub_r[col] = u;
                sb[col] = (REAL)(u > th);
            }
        }
        const REAL *s_f = sb, *s_o = sb + (nb - 1) * H, *s_i = sb + H;
        REAL *RESTRICT q_r = q + r * H, *RESTRICT c_r = c + r * H, *RESTRICT cu_r = cu + r * H, *RESTRICT h_r = h + r * H;
        if (nb == 3) {
            IVDEP
            for (int64_t i = 0; i < H; i++) {
                REAL qv = zr[bH + i] / th_v;
                q_r[i] = qv;
                REAL ig = s_i[i] * NAME(clip)(qv, lo_v);
                REAL cc = ig + s_f[i] * cin_r[i];
                c_r[i] = cc;
                REAL u = NAME(tern_shift)(cc, kc, sh) + NAME(tern_reset)(cup_r[i], kc) * kc[3];
                cu_r[i] = u;
                h_r[i] = s_o[i] * ((REAL)(u > kc[0]) - (REAL)(u < kc[2]));
            }
        } else {
            REAL *RESTRICT gu_r = gu + r * H, *RESTRICT gsgn_r = gsgn + r * H;
            IVDEP
            for (int64_t i = 0; i < H; i++) {
                REAL qv = zr[bH + i] / th_v;
                q_r[i] = qv;
                REAL v = NAME(clip)(qv, lo_v);
                REAL y_in = zr[3 * H + i];
                gsgn_r[i] = (REAL)(y_in > 0) - (REAL)(y_in < 0);
                REAL ug = NAME(tern_shift)(y_in, kg, sh) + NAME(tern_reset)(gup_r[i], kg) * kg[3];
                gu_r[i] = ug;
                REAL ig = v * ((REAL)(ug > kg[0]) - (REAL)(ug < kg[2]));
                REAL cc = ig + s_f[i] * cin_r[i];
                c_r[i] = cc;
                REAL u = NAME(tern_shift)(cc, kc, sh) + NAME(tern_reset)(cup_r[i], kc) * kc[3];
                cu_r[i] = u;
                h_r[i] = s_o[i] * ((REAL)(u > kc[0]) - (REAL)(u < kc[2]));
            }
        }
        if (hb)
            IVDEP
            for (int64_t i = 0; i < H; i++) hb[r * H + i] = to_bf16((float)h[r * H + i]);
    }
}

/* One ternary neuron backward (∂L/∂s = gs, ∂L/∂U' = gup): ∂L/∂y; its sums go to column i of
 * the seven per-column sum rows a0 … a6. */
static inline REAL NAME(tern_back)(REAL gs, REAL gup, REAL u, REAL up_prev, REAL y_in, const REAL *k, REAL sh,
                                   REAL *RESTRICT a0, REAL *RESTRICT a1, REAL *RESTRICT a2, REAL *RESTRICT a3,
                                   REAL *RESTRICT a4, REAL *RESTRICT a5, REAL *RESTRICT a6, int64_t i) {
    REAL sp = (REAL)(u > k[0]);
    REAL sn = (REAL)(u < k[2]);
    REAL wp = gs + (-gup) * k[0];
    REAL wn = gs + (-gup) * k[1];
    wp = wp * NAME(tri)(u, k[0], k[6], k[7]);
    wn = wn * NAME(tri)(u, k[2], k[8], k[9]);
    REAL gu = gup + wp;
    gu = gu + wn;
    a0[i] += gup * sp;
    a1[i] += gup * sn;
    a2[i] += wp * u;
    a3[i] += wn * u;
    a4[i] += gu * up_prev;
    a5[i] += gu * ((REAL)(y_in > 0) * sh);
    a6[i] += gu * ((REAL)(y_in < 0) * sh);
    return gu;
}

/* The first half of the backward pass through the cell of column i: ∂L/∂s_o (into gs_o) and
 * the c neuron (its sums into a0 … a6, ∂L/∂U'(t−1) into guc_out), then ∂L/∂c(n, t) by all paths
 * (returned), ∂L/∂s_f and ∂L/∂c(n−1, t). */
static inline REAL NAME(cell_back)(int64_t i, const REAL *RESTRICT cu_r, const REAL *RESTRICT gh_r,
                                   const REAL *RESTRICT s_o, const REAL *RESTRICT s_f,
                                   const REAL *RESTRICT guc_in_r, const REAL *RESTRICT cup_r,
                                   const REAL *RESTRICT c_r, const REAL *RESTRICT gc_in_r,
                                   const REAL *RESTRICT cin_r, const REAL *kc, REAL sh, REAL *RESTRICT gs_o,
                                   REAL *RESTRICT gs_f, REAL *RESTRICT guc_out_r, REAL *RESTRICT gc_out_r,
                                   REAL *RESTRICT a0, REAL *RESTRICT a1, REAL *RESTRICT a2, REAL *RESTRICT a3,
                                   REAL *RESTRICT a4, REAL *RESTRICT a5, REAL *RESTRICT a6) {
    const REAL uc = cu_r[i], ghv = gh_r[i];
    gs_o[i] = ghv * ((REAL)(uc > kc[0]) - (REAL)(uc < kc[2]));
    const REAL guc = NAME(tern_back)(ghv * s_o[i], guc_in_r[i], uc, NAME(tern_reset)(cup_r[i], kc), c_r[i], kc, sh,
                                     a0, a1, a2, a3, a4, a5, a6, i);
    guc_out_r[i] = guc * kc[3];
    const REAL gc = guc + gc_in_r[i];
    gs_f[i] = gc * cin_r[i];
    gc_out_r[i] = gc * s_f[i];
    return gc;
}

/* Columns [i0, i1) of wf_backward (every row; sb and gsb: this call's own) with their
 * per-column sums into a (NACC rows of H). */
CLONES void NAME(wf_backward_cols)(int64_t i0, int64_t i1, int64_t r0, int64_t rows, int64_t H, int64_t B, int64_t TB,
                                   int64_t nb, int64_t shift,
                                   const REAL *RESTRICT cst, const REAL *RESTRICT gh, const REAL *RESTRICT zrow,
                                   const REAL *RESTRICT ub_prev, const REAL *RESTRICT ub, const REAL *RESTRICT q,
                                   const REAL *RESTRICT c_prev, const REAL *RESTRICT c, const REAL *RESTRICT cu_prev,
                                   const REAL *RESTRICT cu, const REAL *RESTRICT gu_prev, const REAL *RESTRICT gu,
                                   const REAL *RESTRICT gsgn, const REAL *RESTRICT gub_in, const REAL *RESTRICT guc_in,
                                   const REAL *RESTRICT gug_in, const REAL *RESTRICT gc_in, REAL *RESTRICT gub_out,
                                   REAL *RESTRICT guc_out, REAL *RESTRICT gug_out, REAL *RESTRICT gc_out,
                                   REAL *RESTRICT gz, uint16_t *RESTRICT gzb, REAL *RESTRICT a) {
    const int64_t H4 = 4 * H, bH = nb * H;
    const REAL *th_b = cst, *lam_b = cst + nb, *peak_b = cst + 2 * nb, *slope_b = cst + 3 * nb;
    const REAL inv_v = cst[4 * nb + 1], lo_v = cst[4 * nb + 2];
    const REAL *kc = cst + 4 * nb + 3, *kg = kc + 10;
    const REAL sh = (REAL)(shift != 0);
    REAL sb[3 * H], gsb[3 * H];
#define A(n) a + (n) * H, a + ((n) + 1) * H, a + ((n) + 2) * H, a + ((n) + 3) * H, a + ((n) + 4) * H, \
             a + ((n) + 5) * H, a + ((n) + 6) * H
    for (int64_t r = r0; r < r0 + rows; r++) {
        const int has_prev = r + B < TB;
        const REAL *RESTRICT ubp_r = (ub_prev && has_prev) ? ub_prev + (r + B) * bH : zrow;
        const REAL *RESTRICT cup_r = (cu_prev && has_prev) ? cu_prev + (r + B) * H : zrow;
        const REAL *RESTRICT gup_r = (gu_prev && has_prev) ? gu_prev + (r + B) * H : zrow;
        const REAL *RESTRICT cin_r = c_prev ? c_prev + r * H : zrow;
        const REAL *RESTRICT ub_r = ub + r * bH, *RESTRICT gub_in_r = gub_in + r * bH;
        REAL *RESTRICT gz_r = gz + r * H4, *RESTRICT gub_out_r = gub_out + (r + B) * bH;
        for (int64_t g = 0; g < nb; g++)
            IVDEP
            for (int64_t i = i0; i < i1; i++) sb[g * H + i] = (REAL)(ub_r[g * H + i] > th_b[g]);
        const REAL *s_f = sb, *s_o = sb + (nb - 1) * H, *s_i = sb + H;
        REAL *RESTRICT gs_f = gsb, *RESTRICT gs_o = gsb + (nb - 1) * H, *RESTRICT gs_i = gsb + H;
        const REAL *RESTRICT cu_r = cu + r * H, *RESTRICT gh_r = gh + r * H, *RESTRICT c_r = c + r * H;
        const REAL *RESTRICT q_r = q + r * H, *RESTRICT guc_in_r = guc_in + r * H, *RESTRICT gc_in_r = gc_in + r * H;
        REAL *RESTRICT guc_out_r = guc_out + (r + B) * H, *RESTRICT gc_out_r = gc_out + r * H;
        if (nb == 3) {
            IVDEP
            for (int64_t i = i0; i < i1; i++) {
                /* the c neuron, the cell state, the clip gate g (spiking f, i, o) */
                const REAL gc = NAME(cell_back)(i, cu_r, gh_r, s_o, s_f, guc_in_r, cup_r, c_r, gc_in_r, cin_r, kc, sh,
                                                gs_o, gs_f, guc_out_r, gc_out_r, A(10));
                const REAL qv = q_r[i], v = NAME(clip)(qv, lo_v);
                gs_i[i] = gc * v;
                REAL gzv = (gc * s_i[i]) * (REAL)(qv == v);
                gzv = gzv * inv_v;
                gz_r[bH + i] = gzv;
                a[9 * H + i] += gzv * qv;
            }
        } else {
            const REAL *RESTRICT gu_r = gu + r * H, *RESTRICT gsgn_r = gsgn + r * H;
            const REAL *RESTRICT gug_in_r = gug_in + r * H;
            REAL *RESTRICT gug_out_r = gug_out + (r + B) * H;
            IVDEP
            for (int64_t i = i0; i < i1; i++) {
                /* the c neuron, the cell state, the clip gate i, the g neuron (spiking f, o) */
                const REAL gc = NAME(cell_back)(i, cu_r, gh_r, s_o, s_f, guc_in_r, cup_r, c_r, gc_in_r, cin_r, kc, sh,
                                                gs_o, gs_f, guc_out_r, gc_out_r, A(10));
                const REAL qv = q_r[i], v = NAME(clip)(qv, lo_v);
                const REAL ug = gu_r[i];
                const REAL gv = gc * ((REAL)(ug > kg[0]) - (REAL)(ug < kg[2]));
                const REAL gug = NAME(tern_back)(gc * v, gug_in_r[i], ug, NAME(tern_reset)(gup_r[i], kg), gsgn_r[i],
                                                 kg, sh, A(17), i);
                gz_r[3 * H + i] = gug;
                gug_out_r[i] = gug * kg[3];
                REAL gzv = gv * (REAL)(qv == v);
                gzv = gzv * inv_v;
                gz_r[bH + i] = gzv;
                a[9 * H + i] += gzv * qv;
            }
        }
        for (int64_t g = 0; g < nb; g++) {
            const REAL th = th_b[g], lam = lam_b[g], peak = peak_b[g], slope = slope_b[g];
            REAL *RESTRICT a_s = a + g * H, *RESTRICT a_wu = a + (3 + g) * H, *RESTRICT a_lam = a + (6 + g) * H;
            IVDEP
            for (int64_t i = i0; i < i1; i++) {
                const int64_t col = g * H + i;
                const REAL u = ub_r[col], gin = gub_in_r[col];
                REAL w = gsb[col] + (-gin) * th;
                w = w * NAME(tri)(u, th, peak, slope);
                const REAL gub = gin + w;
                gz_r[col] = gub;
                gub_out_r[col] = gub * lam;
                const REAL u0 = ubp_r[col];
                const REAL prev = u0 - (REAL)(u0 > th) * th;
                a_s[i] += gin * sb[col];
                a_wu[i] += w * u;
                a_lam[i] += gub * prev;
            }
        }
        if (gzb)
            for (int64_t g = 0; g < 4; g++)
                IVDEP
                for (int64_t i = i0; i < i1; i++) gzb[r * H4 + g * H + i] = to_bf16((float)gz_r[g * H + i]);
    }
#undef A
}

void NAME(wf_backward)(int64_t threads, int64_t r0, int64_t rows, int64_t H, int64_t B, int64_t TB, int64_t nb,
                       int64_t shift, const REAL *RESTRICT cst, const REAL *RESTRICT gh, const REAL *RESTRICT zrow,
                       const REAL *RESTRICT ub_prev, const REAL *RESTRICT ub, const REAL *RESTRICT q,
                       const REAL *RESTRICT c_prev, const REAL *RESTRICT c, const REAL *RESTRICT cu_prev,
                       const REAL *RESTRICT cu, const REAL *RESTRICT gu_prev, const REAL *RESTRICT gu,
                       const REAL *RESTRICT gsgn, const REAL *RESTRICT gub_in, const REAL *RESTRICT guc_in,
                       const REAL *RESTRICT gug_in, const REAL *RESTRICT gc_in, REAL *RESTRICT gub_out,
                       REAL *RESTRICT guc_out, REAL *RESTRICT gug_out, REAL *RESTRICT gc_out, REAL *RESTRICT gz,
                       uint16_t *RESTRICT gzb, double *RESTRICT acc) {
    REAL *a = calloc((size_t)(NACC * H), sizeof(REAL)); /* per-column sums of this diagonal */
    if (!a) return;
    /* threads split the columns (16 at least each): every per-column sum keeps its row order */
    int64_t nt = threads < 1 ? 1 : threads < H / 16 ? threads : H / 16 > 1 ? H / 16 : 1;
#pragma omp parallel num_threads(nt)
    {
        int64_t t = THREAD, n_t = THREADS;
        NAME(wf_backward_cols)(H * t / n_t, H * (t + 1) / n_t, r0, rows, H, B, TB, nb, shift, cst, gh, zrow, ub_prev,
                               ub, q, c_prev, c, cu_prev, cu, gu_prev, gu, gsgn, gub_in, guc_in, gug_in, gc_in,
                               gub_out, guc_out, gug_out, gc_out, gz, gzb, a);
    }
    if (acc)
        for (int k = 0; k < NACC; k++) {
            double t = 0;
            for (int64_t i = 0; i < H; i++) t += a[k * H + i];
            acc[k] = t;
        }
    free(a);
}

#endif
