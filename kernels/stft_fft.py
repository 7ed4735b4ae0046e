"""The conv-STFT power spectrum as a real FFT: ``re^2 + im^2`` of the Hann-windowed DFT of every frame.

PANNs computes the STFT as two Conv1d (``n_fft`` taps, stride ``hop``) whose weights are the windowed cos / -sin
DFT basis, then ``power = re * re + im * im`` (SPEC §3). As dot products that is ``2 * bins * n_fft`` MACs per frame
(0.106 GMAC for 1 s of audio). Here each frame is one real FFT of length ``n_fft = 2M``:

1. load: ``z[n] = w[2n] x[2n] + i w[2n+1] x[2n+1]`` (the Hann window multiplied in at load time), stored at the
   bit-reversed position of ``n`` (a constant index table);
2. an in-place radix-2 decimation-in-time complex FFT of length ``M`` (``log2 M`` stages; a stage pair is merged into
   one radix-4 pass over memory when ``radix=4``), twiddles ``exp(-2 pi i j / M)`` from a constant table;
3. the real-FFT post-processing ``X[k] = E[k] + exp(-2 pi i k / n_fft) O[k]`` with
   ``E = (Z[k] + conj Z[M-k]) / 2`` and ``O = (Z[k] - conj Z[M-k]) / 2i``, and ``power[k] = |X[k]|^2`` for the
   ``M + 1`` bins.

Vectorised across frames: a chunk of ``frames`` consecutive frames is processed together, SIMD lane ``l`` holding
frame ``f0 + l``, so every butterfly is a vertical vector operation with a broadcast twiddle, and the output row
``out[n, k, f0:f0+frames]`` (the ``(N, bins, frames)`` layout the graph consumes after the two convs) is one
contiguous vector store. Threads over (batch x frame chunks). The last chunk, when ``frames`` does not divide the
frame count, recomputes the last frame in its spare lanes and stores only the real ones.

Constants (computed in float64, stored as fp32): ``table = [window (n_fft) | twiddle re (M/2) | twiddle im (M/2) |
post cos (M+1) | post sin (M+1)]`` and ``bitrev`` (int32, M). The rewrite passes them as Relax constants.

Arguments: ``x`` (N, 1, L) the padded signal as the convs read it, ``table``, ``bitrev``, ``out`` (N, M+1, F) with
``F = (L - n_fft) // hop + 1``.

Work: per frame ``(M/2) log2 M`` butterflies (10 flops each) + ``n_fft`` window multiplies + ``(M+1)`` x 13 flops
of post-processing and power: 31 k flops against ``2 * 2 * bins * n_fft + 3 * bins`` = 2.1 M for the conv form
(n_fft 1024), ~68x fewer. fp32 rel-L2 against float64 ~1.6e-7 (tests: 1e-6; the fp32 conv form is ~2-9e-7).
Measured (Rocket Lake AVX-512, 1 thread, 101 frames, 8 frames per chunk, radix 4, shared machine): 0.079 ms, of
which the windowed load (strided gathers: the frame -> lane transpose) 0.034, the FFT 0.031, the post-processing
0.017; a scalar load loop instead of the gathers was slower (0.097 ms in all).

Knobs (:class:`StftFftConfig`): ``frames`` (frames per chunk = width of the vectorised lane loop: one or two SIMD
registers), ``radix`` (2: one pass over the chunk per stage; 4: stage pairs merged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeavs.tvm_api import PrimFunc, T
from kernels.common import TargetLike, finish, vector_lanes
from kernels.defaults import CpuFacts
from kernels.registry import WORKLOAD_ATTR, Entry, kernel_key, register

NAME = "stft_fft"
"""The kernel's name in the registry and in its workload keys."""
CHAIN = f"edgeavs.{NAME}"


@dataclass(frozen=True)
class StftFftWorkload:
    n: int
    """Batch (signals)."""
    length: int
    """Samples of the padded signal the convs read."""
    n_fft: int = 1024
    hop: int = 320
    dtype: str = "float32"

    @property
    def frames(self) -> int:
        return (self.length - self.n_fft) // self.hop + 1

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def half(self) -> int:
        """``M``: length of the complex FFT."""
        return self.n_fft // 2

    def check(self) -> None:
        m = self.half
        if self.n_fft < 8 or m & (m - 1):
            raise ValueError(f"stft_fft: n_fft={self.n_fft} must be a power of two >= 8")
        if self.length < self.n_fft or self.hop < 1 or self.n < 1:
            raise ValueError(f"stft_fft: no frame in a signal of {self.length} samples (n_fft {self.n_fft})")
        if self.dtype != "float32":
            raise ValueError(f"stft_fft: dtype {self.dtype} (float32 only)")


@dataclass(frozen=True)
class StftFftConfig:
    frames: int = 8
    """Frames per chunk, >= 2: the width of the chunk's vector expressions (SIMD lane = frame)."""
    radix: int = 4
    """2: one pass over the chunk's scratch per FFT stage; 4: two stages per pass (a radix-4 butterfly)."""


def fallback_config(wl: StftFftWorkload, facts: CpuFacts | TargetLike = None) -> StftFftConfig:
    """One SIMD register of frames, at most 8: the chunk's scratch (``2 M frames`` floats, 32 KiB at 8 frames and
    n_fft 1024) then stays within L1/L2 (measured, AVX-512 host, 1 s of audio: 16 frames per chunk was slower
    than 8). Radix 4 halves the passes over the scratch."""
    frames = max(1, min(vector_lanes(facts), 8))
    return StftFftConfig(frames=frames, radix=4)


def knob_space(wl: StftFftWorkload, facts: CpuFacts | TargetLike = None) -> dict[str, list]:
    lanes = vector_lanes(facts)
    return {"frames": sorted({v for v in (lanes // 2, lanes, 2 * lanes) if v >= 1}), "radix": [2, 4]}


# ---------------------------------------------------------------- constants

def tables(wl: StftFftWorkload) -> tuple[np.ndarray, np.ndarray]:
    """``(table, bitrev)``: window, FFT twiddles and post-processing twiddles (fp32), bit-reversal (int32)."""
    n_fft, m = wl.n_fft, wl.half
    t = np.arange(n_fft, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * t / n_fft)  # periodic Hann
    j = np.arange(m // 2, dtype=np.float64)
    tw = np.exp(-2j * np.pi * j / m)
    k = np.arange(m + 1, dtype=np.float64)
    table = np.concatenate([window, tw.real, tw.imag, np.cos(2.0 * np.pi * k / n_fft),
                            np.sin(2.0 * np.pi * k / n_fft)]).astype(np.float32)
    bits = m.bit_length() - 1
    idx = np.arange(m)
    rev = np.zeros(m, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return table, rev.astype(np.int32)


def dft_basis(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """The float64 Hann-windowed DFT basis the conv-STFT weights must equal: ``cos``, ``-sin``, ``(bins, n_fft)``."""
    t = np.arange(n_fft, dtype=np.float64)
    k = np.arange(n_fft // 2 + 1, dtype=np.float64)
    phase = 2.0 * np.pi * np.outer(k, t) / n_fft
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * t / n_fft)
    return np.cos(phase) * window, -np.sin(phase) * window


def flops(wl: StftFftWorkload) -> dict[str, int]:
    """Floating-point operations of this kernel and of the conv form (2 convs as MACs x 2 + the square-add)."""
    m = wl.half
    stages = m.bit_length() - 1
    fft = wl.n_fft + (m // 2) * stages * 10 + (m + 1) * 13
    conv = 2 * 2 * wl.bins * wl.n_fft + 3 * wl.bins
    return {"fft": fft * wl.frames * wl.n, "conv": conv * wl.frames * wl.n}


# ---------------------------------------------------------------- the kernel

def stft_fft_kernel(wl: StftFftWorkload, target: TargetLike = None, config: StftFftConfig | None = None) -> PrimFunc:
    """The fixed-shape PrimFunc ``(x, table, bitrev, out)`` for ``wl`` (``config`` defaults to ``fallback_config``)."""
    wl.check()
    cfg = config or fallback_config(wl, target)
    return schedule(wl, cfg)


def schedule(wl: StftFftWorkload, cfg: StftFftConfig) -> PrimFunc:
    """The kernel with ``cfg`` (``edgeavs tune``'s knob search builds candidates through this)."""

    if cfg.frames < 2 or cfg.radix not in (2, 4):
        raise ValueError(f"stft_fft: bad config {cfg}")
    return finish(_build(wl, cfg), CHAIN, cfg).with_attr(WORKLOAD_ATTR, kernel_key(NAME, wl))


def _build(wl: StftFftWorkload, cfg: StftFftConfig) -> PrimFunc:  # noqa: C901 - one TVMScript body
    N, L, HOP = wl.n, wl.length, wl.hop
    M = wl.half
    BINS, F = wl.bins, wl.frames
    V = cfg.frames
    CHUNKS = (F + V - 1) // V
    LOG2M = M.bit_length() - 1
    # radix 4: stage pairs (s, s+1) from s = 0; an odd stage count leaves the last stage radix 2
    PAIRS = LOG2M // 2 if cfg.radix == 4 else 0
    SINGLES = LOG2M - 2 * PAIRS
    TWR = wl.n_fft
    TWI = TWR + M // 2
    PC = TWI + M // 2
    PS = PC + BINS
    TLEN = PS + BINS
    TAIL = F % V != 0

    @T.prim_func(private=True)
    def stft_fft(x: T.Buffer((N, 1, L), "float32"), table: T.Buffer((TLEN,), "float32"),
                 bitrev: T.Buffer((M,), "int32"), out: T.Buffer((N, BINS, F), "float32")):
        # Explicit vector expressions (``buf[T.Ramp(a, 1, V)]``, lane = frame) rather than T.vectorized loops: TVM
        # 0.27's vectoriser broadcasts the first lane of a value bound to a name inside the loop. Names are ``T.bind``
        # (SSA values in registers): a plain ``t = ...`` is a mutable local, a heap workspace per name and chunk.
        for c in T.parallel(N * CHUNKS):
            zr = T.decl_buffer((M * V,), "float32")
            zi = T.decl_buffer((M * V,), "float32")
            row = T.decl_buffer((V,), "float32")
            n = T.bind(c // CHUNKS)
            f0 = T.bind(c % CHUNKS * V)
            # frame start of every lane; spare lanes of the last chunk repeat frame F-1
            starts = T.bind(T.min(T.Ramp(f0, 1, V), T.Broadcast(F - 1, V)) * T.Broadcast(HOP, V))
            # 1. windowed load at the bit-reversed position
            for i in range(M):
                p = T.bind(bitrev[i] * V)
                zr[T.Ramp(p, 1, V)] = x[n, 0, starts + T.Broadcast(2 * i, V)] * T.Broadcast(table[2 * i], V)
                zi[T.Ramp(p, 1, V)] = x[n, 0, starts + T.Broadcast(2 * i + 1, V)] * T.Broadcast(table[2 * i + 1], V)
            # 2a. radix-4 passes: stages s and s+1 at once (sub-FFTs of length 4q from four of length q)
            for sp in T.unroll(PAIRS):
                q = T.bind(1 << (2 * sp))
                for g in range(M // (4 * q)):
                    for j in range(q):
                        a0 = T.bind((g * 4 * q + j) * V)
                        a1 = T.bind(a0 + q * V)
                        a2 = T.bind(a1 + q * V)
                        a3 = T.bind(a2 + q * V)
                        w1r = T.bind(T.Broadcast(table[TWR + j * (M // (2 * q))], V))  # exp(-2 pi i j / 2q): stage s
                        w1i = T.bind(T.Broadcast(table[TWI + j * (M // (2 * q))], V))
                        w2r = T.bind(T.Broadcast(table[TWR + j * (M // (4 * q))], V))  # exp(-2 pi i j / 4q): stage s+1
                        w2i = T.bind(T.Broadcast(table[TWI + j * (M // (4 * q))], V))
                        x0r = T.bind(zr[T.Ramp(a0, 1, V)])
                        x0i = T.bind(zi[T.Ramp(a0, 1, V)])
                        x1r = T.bind(zr[T.Ramp(a1, 1, V)])
                        x1i = T.bind(zi[T.Ramp(a1, 1, V)])
                        x2r = T.bind(zr[T.Ramp(a2, 1, V)])
                        x2i = T.bind(zi[T.Ramp(a2, 1, V)])
                        x3r = T.bind(zr[T.Ramp(a3, 1, V)])
                        x3i = T.bind(zi[T.Ramp(a3, 1, V)])
                        # stage s: pairs (0, 1) and (2, 3), twiddle w1
                        br = T.bind(x1r * w1r - x1i * w1i)
                        bi = T.bind(x1r * w1i + x1i * w1r)
                        dr = T.bind(x3r * w1r - x3i * w1i)
                        di = T.bind(x3r * w1i + x3i * w1r)
                        u0r = T.bind(x0r + br)
                        u0i = T.bind(x0i + bi)
                        u1r = T.bind(x0r - br)
                        u1i = T.bind(x0i - bi)
                        u2r = T.bind(x2r + dr)
                        u2i = T.bind(x2i + di)
                        u3r = T.bind(x2r - dr)
                        u3i = T.bind(x2i - di)
                        # stage s+1: pairs (0, 2) with w2 and (1, 3) with w2 * exp(-i pi / 2) = -i w2
                        er = T.bind(u2r * w2r - u2i * w2i)
                        ei = T.bind(u2r * w2i + u2i * w2r)
                        hr = T.bind(u3r * w2i + u3i * w2r)
                        hi = T.bind(u3i * w2i - u3r * w2r)
                        zr[T.Ramp(a0, 1, V)] = u0r + er
                        zi[T.Ramp(a0, 1, V)] = u0i + ei
                        zr[T.Ramp(a2, 1, V)] = u0r - er
                        zi[T.Ramp(a2, 1, V)] = u0i - ei
                        zr[T.Ramp(a1, 1, V)] = u1r + hr
                        zi[T.Ramp(a1, 1, V)] = u1i + hi
                        zr[T.Ramp(a3, 1, V)] = u1r - hr
                        zi[T.Ramp(a3, 1, V)] = u1i - hi
            # 2b. the remaining radix-2 stages
            for ss in T.unroll(SINGLES):
                h = T.bind(1 << (2 * PAIRS + ss))
                for g in range(M // (2 * h)):
                    for j in range(h):
                        a = T.bind((g * 2 * h + j) * V)
                        b = T.bind(a + h * V)
                        wr = T.bind(T.Broadcast(table[TWR + j * (M // (2 * h))], V))
                        wi = T.bind(T.Broadcast(table[TWI + j * (M // (2 * h))], V))
                        ar = T.bind(zr[T.Ramp(a, 1, V)])
                        ai = T.bind(zi[T.Ramp(a, 1, V)])
                        tr = T.bind(zr[T.Ramp(b, 1, V)] * wr - zi[T.Ramp(b, 1, V)] * wi)
                        ti = T.bind(zr[T.Ramp(b, 1, V)] * wi + zi[T.Ramp(b, 1, V)] * wr)
                        zr[T.Ramp(b, 1, V)] = ar - tr
                        zi[T.Ramp(b, 1, V)] = ai - ti
                        zr[T.Ramp(a, 1, V)] = ar + tr
                        zi[T.Ramp(a, 1, V)] = ai + ti
            # 3. real-FFT post-processing and power, one output row segment per bin
            for k in range(BINS):
                p1 = T.bind((k % M) * V)
                p2 = T.bind(((M - k) % M) * V)
                cr = T.bind(T.Broadcast(table[PC + k], V))
                ci = T.bind(T.Broadcast(table[PS + k], V))
                er = T.bind(zr[T.Ramp(p1, 1, V)] + zr[T.Ramp(p2, 1, V)])
                ei = T.bind(zi[T.Ramp(p1, 1, V)] - zi[T.Ramp(p2, 1, V)])
                or_ = T.bind(zi[T.Ramp(p1, 1, V)] + zi[T.Ramp(p2, 1, V)])
                oi = T.bind(zr[T.Ramp(p2, 1, V)] - zr[T.Ramp(p1, 1, V)])
                xr = T.bind(er + cr * or_ + ci * oi)
                xi = T.bind(ei + cr * oi - ci * or_)
                pw = T.bind(T.Broadcast(T.float32(0.25), V) * (xr * xr + xi * xi))
                if TAIL and f0 + V > F:
                    row[T.Ramp(0, 1, V)] = pw
                    for lane in range(F - f0):
                        out[n, k, f0 + lane] = row[lane]
                else:
                    out[n, k, T.Ramp(f0, 1, V)] = pw

    return stft_fft


def reference(x: np.ndarray, n_fft: int = 1024, hop: int = 320) -> np.ndarray:
    """float64 numpy reference: ``|rfft(window * frame)|^2`` as ``(N, bins, frames)``."""
    x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    frames = (x.shape[1] - n_fft) // hop + 1
    idx = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None]
    t = np.arange(n_fft, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * t / n_fft)
    spec = np.fft.rfft(x[:, idx] * window, axis=-1)  # (N, frames, bins)
    return np.transpose(spec.real ** 2 + spec.imag ** 2, (0, 2, 1))


__all__ = ["CHAIN", "StftFftWorkload", "StftFftConfig", "fallback_config", "knob_space", "tables", "dft_basis",
           "flops", "stft_fft_kernel", "reference"]


ENTRY = register(Entry(
    name=NAME, role="kernel", serves=(CHAIN,), workload=StftFftWorkload, config=StftFftConfig,
    fallback_config=fallback_config, knob_space=knob_space, build=schedule))
