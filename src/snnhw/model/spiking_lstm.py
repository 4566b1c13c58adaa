"""The spiking LIF-LSTM (float model), computed along the anti-diagonals n + t = const.

Cell (n, t) of a layer (element n = 1..N, time step t = 1..T; gates stacked f, i, g, o)::

    z(n,t)  = Wx·u(n,t) + Wh·h(n−1,t) + b           h(0,t) = c(0,t) = 0, every U(n,0) = 0
    s_f, s_o          binary LIF of z_f, z_o         (membrane along t, soft reset)
    non-spiking g:    s_i = binary LIF of z_i,  g = clip(z_g/θ_g, −1, 1),       q = s_i·g
    non-spiking i:    i = clip(z_i/θ_i, 0, 1),  s_g = ternary LIF of shift(z_g), q = i·s_g
    c(n,t)  = s_f·c(n−1,t) + q
    s_c     = ternary LIF of shift(c(n,t))          (membrane U_c(n,t) from U_c(n,t−1))
    h(n,t)  = s_o·s_c ∈ {−1, 0, +1}

``shift(y) = y + θ+/(2T)`` if y > 0, ``y − θ−/(2T)`` if y < 0 (only when ``cfg.shift``). The
sigmoid-type gates have no ``+1/2`` in their formulas: the centring ``+θ/2`` (and, for the
spiking ones with ``cfg.shift``, the shift ``+θ/(2T)``) lives in the bias (see
:func:`sigmoid_bias_offset`). Readout: ``r = (1/T)·Σ_t h_L(len_b, t)`` → head.

Cell (n, t) depends only on (n−1, t) and (n, t−1), so the cells of one anti-diagonal are
independent: :meth:`SpikingLSTM.forward` runs the T+N−1 diagonals, each one batched over
its ≤ T cells, as one autograd node per layer with a hand-written backward
(:mod:`snnhw.model.wavefront`). Two references are kept: :meth:`SpikingLSTM.forward_legacy`,
the same diagonal schedule composed of per-step autograd operations (the previous
implementation), and :meth:`SpikingLSTM.forward_reference`, the plain double loop over n, t;
those two call the same cell function and give identical results, the fast path agrees with
them to rounding (same formulas, sums in another order).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor, nn

from snnhw.errors import UserError
from snnhw.model.config import ModelConfig
from snnhw.model.hard_lstm import THRESHOLD_MIN, check_inputs, init_lstm_weights
from snnhw.model.heads import Head
from snnhw.model.neurons import binary_lif, ternary_lif, ternary_shift
from snnhw.model.wavefront import (
    HISTORY_KEYS,
    WavefrontFunction,
    WavefrontSpec,
    param_order,
    recurrent_bf16_enabled,
    to_diagonal,
)

TRACE_KEYS: tuple[str, ...] = HISTORY_KEYS
"""Keys of a layer's trace (besides ``readout``): spikes s_f, i (spike or value), g (spike or
value), s_o, s_c, h, and the cell state c(n,t) itself (``cell``): ``("f", "i", "g", "o", "c",
"h", "cell")``."""


def sigmoid_bias_offset(theta: float, T: int, shift: bool, spiking: bool) -> float:
    """What the bias of a sigmoid-type gate (f, i, o) carries on top of the source bias.

    ``θ/2`` (centring: ``clip(z/θ + 1/2, 0, 1) = clip((z + θ/2)/θ, 0, 1)``) for every
    sigmoid-type gate, plus ``θ/(2T)`` (the paper's optimal IF shift) for a spiking one when
    ``shift`` is set. Units of z.
    """
    return theta / 2 + (theta / (2 * T) if (spiking and shift) else 0.0)


def theta_keys(nonspiking_gate: str) -> tuple[str, ...]:
    """Keys of :attr:`SpikingLSTMLayer.theta` for a choice of non-spiking gate ("i" or "g")."""
    g_keys = ("g",) if nonspiking_gate == "g" else ("g", "g_neg")
    return ("f", "i", *g_keys, "o", "c", "c_neg")


def leak_keys(nonspiking_gate: str) -> tuple[str, ...]:
    """Keys of :attr:`SpikingLSTMLayer.leak`: every spiking neuron (f, o, c and i or g)."""
    return ("f", "i" if nonspiking_gate == "g" else "g", "o", "c")


WAVEFRONT_GATE_ORDER: dict[bool, tuple[int, ...]] = {True: (0, 1, 3, 2), False: (0, 3, 1, 2)}
"""Gate-block order of the fast path (indices into f, i, g, o), keyed by "i spikes": the binary
LIF gates first (f, i, o | g, or f, o | i | g), so that they are one operator per diagonal."""


@lru_cache(maxsize=64)
def _diagonal_tables(N: int, T: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Index tables of the diagonal schedule (CPU, int64 / bool).

    Diagonal k (0-based, k = n + t with 0-based n, t) holds the ≤ T cells n ∈ [k−T+1, k]; the
    cell of element n sits in slot ``p = n mod T``. Returns ``n_of`` [D, T] (element of slot p
    on diagonal k, may be < 0 or ≥ N for the ramps), ``t_of`` [D, T], ``valid`` [D, T]
    (0 ≤ n < N) and ``keep`` [D, T] (1.0 where the membrane is carried on, i.e. t > 0).
    """
    D = N + T - 1
    k = torch.arange(D).unsqueeze(1)
    p = torch.arange(T).unsqueeze(0)
    t_of = torch.remainder(k - p, T)
    n_of = k - t_of
    valid = (n_of >= 0) & (n_of < N)
    keep = (t_of > 0).to(torch.float64)
    return n_of, t_of, valid, keep


class _Step(NamedTuple):
    """Per-forward constants of one layer (thresholds, shifts, transposed recurrent weights)."""

    wh_t: Tensor
    th_f: Tensor
    th_i: Tensor
    th_g: Tensor
    th_gn: Tensor | None
    th_o: Tensor
    th_c: Tensor
    th_cn: Tensor
    sig_g: Tensor | None
    sig_gn: Tensor | None
    sig_c: Tensor | None
    sig_cn: Tensor | None


class SpikingLSTMLayer(nn.Module):
    """One spiking LSTM layer.

    Parameters: ``weight_x`` [4H, D_in], ``weight_h`` [4H, H], ``bias`` [4H] (the sigmoid
    offsets of :func:`sigmoid_bias_offset` included), ``theta`` (0-dim thresholds, keys from
    :func:`theta_keys`, all > 0), ``leak`` (0-dim λ of every spiking neuron, keys from
    :func:`leak_keys`). Default initialisation = conversion of a freshly initialised hard
    LSTM: weights uniform in ±1/√H, θ = 1, λ = 1 (IF), bias offsets folded in.
    """

    def __init__(self, input_size: int, hidden_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.T = cfg.T
        self.nonspiking_gate = cfg.nonspiking_gate
        self.spiking_i = cfg.nonspiking_gate == "g"
        self.shift = cfg.shift
        self.gamma = cfg.gamma
        self.weight_x = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_h = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        init_lstm_weights(self.weight_x, self.weight_h, self.bias, hidden_size)
        self.theta = nn.ParameterDict(
            {k: nn.Parameter(torch.tensor(1.0), requires_grad=cfg.train_theta) for k in theta_keys(cfg.nonspiking_gate)}
        )
        self.leak = nn.ParameterDict(
            {k: nn.Parameter(torch.tensor(1.0), requires_grad=cfg.train_leak) for k in leak_keys(cfg.nonspiking_gate)}
        )
        with torch.no_grad():
            for gate, spiking in self.sigmoid_gates:
                self.gate_bias(gate).add_(sigmoid_bias_offset(1.0, self.T, self.shift, spiking))

    @property
    def sigmoid_gates(self) -> tuple[tuple[str, bool], ...]:
        """``(gate, spiking)`` of the sigmoid-type gates f, i, o: each one's bias carries
        :func:`sigmoid_bias_offset` (i spikes unless it is the non-spiking gate)."""
        return (("f", True), ("i", self.spiking_i), ("o", True))

    def gate_bias(self, gate: str) -> Tensor:
        """The H-row block of ``bias`` belonging to ``gate`` (a view)."""
        k = "figo".index(gate)
        return self.bias[k * self.hidden_size:(k + 1) * self.hidden_size]

    def constrain_parameters(self) -> None:
        """Keep θ ≥ :data:`THRESHOLD_MIN` and λ ≥ 0 (called by the trainer after each step)."""
        with torch.no_grad():
            for th in self.theta.values():
                th.clamp_(min=THRESHOLD_MIN)
            for lam in self.leak.values():
                lam.clamp_(min=0.0)

    def project(self, u: Tensor) -> Tensor:
        """Input part of z: ``Wx·u + b`` for u [..., D_in] → [..., 4H] (computed once per layer)."""
        return torch.matmul(u, self.weight_x.t()) + self.bias

    def _constants(self) -> _Step:
        th = self.theta
        two_t = 2 * self.T
        sig_g = sig_gn = sig_c = sig_cn = None
        if self.shift:
            sig_c, sig_cn = th["c"] / two_t, th["c_neg"] / two_t
            if not self.spiking_i:
                sig_g, sig_gn = th["g"] / two_t, th["g_neg"] / two_t
        return _Step(
            wh_t=self.weight_h.t(), th_f=th["f"], th_i=th["i"], th_g=th["g"],
            th_gn=None if self.spiking_i else th["g_neg"], th_o=th["o"], th_c=th["c"], th_cn=th["c_neg"],
            sig_g=sig_g, sig_gn=sig_gn, sig_c=sig_c, sig_cn=sig_cn,
        )

    def _preactivation(self, k: _Step, zx: Tensor, h_in: Tensor) -> Tensor:
        """``z = zx + Wh·h_in`` for L slots: zx [L, B, 4H], h_in [L, B, H] → [L, B, 4H].

        The diagonal schedule always passes the full block of T slots (one GEMM of T·B rows);
        the bit-exact reference passes the same block shape, so that BLAS sums every row in
        the same order and the two schedules agree bit for bit.
        """
        L, B, H4 = zx.shape
        return torch.addmm(zx.reshape(L * B, H4), h_in.reshape(L * B, self.hidden_size), k.wh_t).view(L, B, H4)

    def _cell(
        self, k: _Step, z: Tensor, c_in: Tensor, mem: tuple[Tensor, ...], lam: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """The neurons of a batch of L cells: z [L, B, 4H], c_in = c(n−1,t), mem = U(n,t−1) [L, B, H].

        ``mem``/``lam`` are ordered f, (i or g), o, c; ``lam`` is λ times 0 where t = 0 (a new
        element starts with membranes at 0). Returns h, c, the new membranes and the trace
        values (s_f, i, g, s_o, s_c).
        """
        gamma = self.gamma
        z_f, z_i, z_g, z_o = z.chunk(4, dim=2)
        s_f, u_f = binary_lif(mem[0], z_f, k.th_f, lam[0], gamma)
        if self.spiking_i:
            i, u_ig = binary_lif(mem[1], z_i, k.th_i, lam[1], gamma)
            g = torch.clamp(z_g / k.th_g, -1.0, 1.0)
        else:
            i = torch.clamp(z_i / k.th_i, 0.0, 1.0)
            y_g = ternary_shift(z_g, k.sig_g, k.sig_gn) if self.shift else z_g
            g, u_ig = ternary_lif(mem[1], y_g, k.th_g, k.th_gn, lam[1], gamma)
        s_o, u_o = binary_lif(mem[2], z_o, k.th_o, lam[2], gamma)
        c = torch.addcmul(i * g, s_f, c_in)
        y_c = ternary_shift(c, k.sig_c, k.sig_cn) if self.shift else c
        s_c, u_c = ternary_lif(mem[3], y_c, k.th_c, k.th_cn, lam[3], gamma)
        return s_o * s_c, c, (u_f, u_ig, u_o, u_c), (s_f, i, g, s_o, s_c)

    def _leaks(self) -> tuple[Tensor, ...]:
        return tuple(self.leak[key] for key in leak_keys(self.nonspiking_gate))

    def _permuted(self, w: Tensor) -> Tensor:
        """Rows of ``w`` ([4H, …] or [4H]) in the gate order of the fast path (autograd-aware)."""
        hs = self.hidden_size
        return torch.cat([w[g * hs:(g + 1) * hs] for g in WAVEFRONT_GATE_ORDER[self.spiking_i]])

    def _wavefront_params(self) -> list[Tensor]:
        """θ and λ in the order :class:`~snnhw.model.wavefront.WavefrontFunction` takes them."""
        return [getattr(self, group)[key] for group, key in param_order(self.spiking_i)]

    def run_wavefront(
        self, u: Tensor, direct: bool, record: bool = False
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        """All cells of the layer by the fast path (:mod:`snnhw.model.wavefront`).

        Args:
            u: the layer input: ``[N, B, D_in]`` when ``direct`` (the same at every t), else
                ``[D, T, B, D_in]`` in the diagonal layout (``D = N + T − 1``; e.g. the ``hd``
                of the layer below, or :func:`~snnhw.model.wavefront.to_diagonal` of spikes).
            direct: see ``u``.
            record: also return the trace.

        Returns:
            ``hd`` [D, T, B, H] (h in the diagonal layout: cell (n, t) at ``[n + t, T − 1 − t]``,
            0 in the slots without a cell) and, when ``record``, a dict of [N, T, B, H] tensors
            with the keys of :data:`TRACE_KEYS`.
        """
        T = self.T
        N = u.shape[0] if direct else u.shape[0] - T + 1
        params = self._wavefront_params()
        weights = [self._permuted(self.weight_x), self._permuted(self.bias), self._permuted(self.weight_h)]
        u = u.contiguous()
        train = torch.is_grad_enabled() and any(t.requires_grad for t in (u, *weights, *params))
        spec = WavefrontSpec(N=N, T=T, spiking_i=self.spiking_i, shift=self.shift, gamma=self.gamma,
                             direct=direct, record=record, train=train, bf16=train and recurrent_bf16_enabled())
        out = WavefrontFunction.apply(spec, u, *weights, *params)
        if not record:
            return out, None
        return out[0], dict(zip(TRACE_KEYS, out[1:], strict=True))

    def run(
        self, zx: Tensor, naive: bool = False, record: bool = False, bitexact: bool = True
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        """All cells of the layer.

        Args:
            zx: ``Wx·u + b`` as [N, T, B, 4H], or [N, 1, B, 4H] when the input is the same for
                every t (direct encoding).
            naive: run the double loop over n, t instead of the diagonals (reference).
            record: also return every cell's trace values.
            bitexact: (naive only) embed each cell's recurrent GEMM in the diagonal's T·B-row
                block so that the result is bit-identical to the diagonal schedule; False runs a
                plain B-row GEMM per cell (the fair timing baseline; results then agree only
                to rounding, since BLAS may sum in another order).

        Returns:
            ``h`` [N, T, B, H] and, when ``record``, a dict of [N, T, B, H] tensors with the
            keys of :data:`TRACE_KEYS`.
        """
        if naive:
            return self._run_naive(zx, record, bitexact)
        return self._run_diagonal(zx, record)

    def _run_diagonal(self, zx: Tensor, record: bool) -> tuple[Tensor, dict[str, Tensor] | None]:
        N, T, B, hs = zx.shape[0], self.T, zx.shape[2], self.hidden_size
        n_of, t_of, valid, keep = (a.to(zx.device) for a in _diagonal_tables(N, T))
        n_idx = n_of.clamp(0, N - 1)
        t_idx = t_of if zx.shape[1] == T else torch.zeros_like(t_of)
        zx_diag = zx[n_idx, t_idx].unbind(0)  # D × [T, B, 4H]: slot p of diagonal k
        keep = keep.to(zx.dtype).view(-1, T, 1, 1)
        lam_diag = [(keep * lam).unbind(0) for lam in self._leaks()]
        valid = valid.to(zx.dtype).view(-1, T, 1, 1)
        consts = self._constants()
        zeros = zx.new_zeros(T, B, hs)
        h_in, c_in, mem = zeros, zeros, (zeros,) * 4
        hs_out: list[Tensor] = []
        recs: list[tuple[Tensor, ...]] = []
        for k, zx_k in enumerate(zx_diag):
            z = self._preactivation(consts, zx_k, h_in)
            h, c, mem, rec = self._cell(consts, z, c_in, mem, tuple(lam[k] for lam in lam_diag))
            if k < T - 1:  # ramp-up: slots of elements n < 0 must pass h = c = 0 on to element 0
                h, c = h * valid[k], c * valid[k]
            hs_out.append(h)
            if record:
                recs.append((*rec, h, c))
            if T > 1:  # the cell of element n+1 at step t sits one slot further
                h_in, c_in = torch.roll(h, 1, 0), torch.roll(c, 1, 0)
            else:
                h_in, c_in = h, c
        n_grid = torch.arange(N, device=zx.device).unsqueeze(1)
        t_grid = torch.arange(T, device=zx.device).unsqueeze(0)
        k_grid, p_grid = n_grid + t_grid, (n_grid % T).expand(N, T)
        h_grid = torch.stack(hs_out)[k_grid, p_grid]
        if not record:
            return h_grid, None
        trace = {key: torch.stack(vals)[k_grid, p_grid] for key, vals in zip(TRACE_KEYS, zip(*recs))}
        return h_grid, trace

    def _run_naive(self, zx: Tensor, record: bool, bitexact: bool) -> tuple[Tensor, dict[str, Tensor] | None]:
        N, T, B, hs = zx.shape[0], self.T, zx.shape[2], self.hidden_size
        consts = self._constants()
        keep = [zx.new_tensor(0.0 if t == 0 else 1.0).view(1, 1, 1) for t in range(T)]
        lam_t = [tuple(kp * lam for lam in self._leaks()) for kp in keep]
        zeros = zx.new_zeros(1, B, hs)
        zx_zero = zx.new_zeros(1, B, zx.shape[3])
        h_prev = [zeros] * T  # h(n−1, t)
        c_prev = [zeros] * T
        h_rows: list[Tensor] = []
        recs: list[list[tuple[Tensor, ...]]] = []
        for n in range(N):
            mem = (zeros,) * 4
            rec_row = []
            p = n % T  # the slot the diagonal schedule gives element n; other slots stay 0
            for t in range(T):
                zx_nt = zx[n, t if zx.shape[1] == T else 0].unsqueeze(0)
                if bitexact:
                    zx_blk = torch.cat([zx_zero] * p + [zx_nt] + [zx_zero] * (T - 1 - p))
                    h_blk = torch.cat([zeros] * p + [h_prev[t]] + [zeros] * (T - 1 - p))
                    z = self._preactivation(consts, zx_blk, h_blk)[p:p + 1]
                else:
                    z = self._preactivation(consts, zx_nt, h_prev[t])
                h, c, mem, rec = self._cell(consts, z, c_prev[t], mem, lam_t[t])
                h_prev[t], c_prev[t] = h, c
                rec_row.append((*rec, h, c))
            h_rows.append(torch.cat(h_prev))
            recs.append(rec_row)
        h_grid = torch.stack(h_rows)
        if not record:
            return h_grid, None
        trace = {
            key: torch.stack([torch.cat([cell[j] for cell in row]) for row in recs])
            for j, key in enumerate(TRACE_KEYS)
        }
        return h_grid, trace


class SpikingLSTM(nn.Module):
    """Stacked spiking LIF-LSTM classifier.

    Attributes: ``cfg`` (``spiking`` True), ``layers`` (:class:`SpikingLSTMLayer` list),
    ``head`` (:class:`Head`).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if not cfg.spiking:
            raise UserError("SpikingLSTM needs a config with spiking=True")
        self.cfg = cfg
        sizes = [cfg.input_size] + [cfg.hidden_size] * (cfg.num_layers - 1)
        self.layers = nn.ModuleList(SpikingLSTMLayer(d, cfg.hidden_size, cfg) for d in sizes)
        self.head = Head(cfg.hidden_size, cfg.num_classes, cfg.head_hidden)

    def encode(self, x: Tensor) -> Tensor:
        """Rate encoding: spikes [B, N, T, D] in {−1, 0, 1}, ``sign(x)·Bernoulli(min(|x|, 1))``.

        Draws from torch's global generator (the integer model uses its own LFSR encoder; feed
        its spikes through ``spikes_in`` for an exact comparison).
        """
        prob = torch.clamp(x.abs(), max=1.0).unsqueeze(2).expand(-1, -1, self.cfg.T, -1)
        return torch.bernoulli(prob) * torch.sign(x).unsqueeze(2)

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        spikes_in: Tensor | None = None,
        record: bool = False,
    ) -> Tensor | tuple[Tensor, list[dict[str, Tensor]]]:
        """Logits [B, C] for x [B, N, D] (diagonal schedule, fast path).

        Args:
            x: the sequences; sample b is read out at its element ``lengths[b]`` (1-based).
            lengths: [B] valid elements per sample (None: all N).
            spikes_in: [B, N, T, D] layer-1 input spikes in {−1, 0, 1}; replaces the encoder.
            record: also return the trace: one dict per layer with keys
                :data:`TRACE_KEYS` ([B, N, T, H] each) and ``readout``
                (``(1/T)·Σ_t h(len_b, t)`` of that layer, [B, H]).
        """
        cfg = self.cfg
        lengths = check_inputs(x, lengths, cfg.input_size)
        u, direct = self._input(x, spikes_in)
        T = cfg.T
        B = x.shape[0]
        if direct:
            u = u[:, 0]  # [N, B, D]
        else:
            u = to_diagonal(u, T)
        t = torch.arange(T, device=x.device)
        k_idx = (lengths - 1).unsqueeze(1) + t  # diagonal of cell (len_b − 1, t)
        j_idx = (T - 1 - t).unsqueeze(0)
        b_idx = torch.arange(B, device=x.device).unsqueeze(1)
        trace: list[dict[str, Tensor]] = []
        for layer in self.layers:
            hd, rec = layer.run_wavefront(u, direct, record=record)
            if record:
                assert rec is not None
                layer_trace = {key: val.permute(2, 0, 1, 3) for key, val in rec.items()}
                layer_trace["readout"] = hd[k_idx, j_idx, b_idx].mean(1)
                trace.append(layer_trace)
            u, direct = hd, False
        logits = self.head(hd[k_idx, j_idx, b_idx].mean(1))
        return (logits, trace) if record else logits

    def forward_legacy(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        spikes_in: Tensor | None = None,
        record: bool = False,
    ) -> Tensor | tuple[Tensor, list[dict[str, Tensor]]]:
        """As :meth:`forward`, by the previous implementation (test and benchmark reference).

        The same diagonal schedule composed of per-step autograd operations
        (:meth:`SpikingLSTMLayer.run`): identical to :meth:`forward_reference`, equal to
        :meth:`forward` to rounding (``tests/model/test_spiking_speed_equivalence.py``).
        """
        return self._forward(x, lengths, spikes_in, record, naive=False)

    def forward_reference(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        spikes_in: Tensor | None = None,
        record: bool = False,
        bitexact: bool = True,
    ) -> Tensor | tuple[Tensor, list[dict[str, Tensor]]]:
        """As :meth:`forward`, computed by the naive double loop over n and t (test reference).

        ``bitexact`` (default) gives results bit-identical to :meth:`forward_legacy`; False uses a
        plain per-cell GEMM (timing baseline, equal to rounding only), see
        :meth:`SpikingLSTMLayer.run`.
        """
        return self._forward(x, lengths, spikes_in, record, naive=True, bitexact=bitexact)

    def _input(self, x: Tensor, spikes_in: Tensor | None) -> tuple[Tensor, bool]:
        """Layer-1 input ``[N, T, B, D]`` (spikes) or ``[N, 1, B, D]`` (direct, flag True)."""
        cfg = self.cfg
        B, N = x.shape[0], x.shape[1]
        if spikes_in is not None:
            if spikes_in.shape != (B, N, cfg.T, cfg.input_size):
                raise UserError(f"spikes_in must be [{B}, {N}, {cfg.T}, {cfg.input_size}], got {list(spikes_in.shape)}")
            return spikes_in.to(x.dtype).permute(1, 2, 0, 3), False
        if cfg.encoding == "rate":
            return self.encode(x).permute(1, 2, 0, 3), False
        return x.transpose(0, 1).unsqueeze(1), True  # [N, 1, B, D]

    def _forward(
        self,
        x: Tensor,
        lengths: Tensor | None,
        spikes_in: Tensor | None,
        record: bool,
        naive: bool,
        bitexact: bool = True,
    ) -> Tensor | tuple[Tensor, list[dict[str, Tensor]]]:
        lengths = check_inputs(x, lengths, self.cfg.input_size)
        B = x.shape[0]
        u, _ = self._input(x, spikes_in)
        batch = torch.arange(B, device=x.device)
        trace: list[dict[str, Tensor]] = []
        for layer in self.layers:
            h, rec = layer.run(layer.project(u), naive=naive, record=record, bitexact=bitexact)
            if record:
                layer_trace = {key: val.permute(2, 0, 1, 3) for key, val in rec.items()}
                layer_trace["readout"] = h[lengths - 1, :, batch].mean(1)
                trace.append(layer_trace)
            u = h
        logits = self.head(h[lengths - 1, :, batch].mean(1))
        return (logits, trace) if record else logits
