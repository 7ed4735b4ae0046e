"""Single-op Relax modules with the model's real shapes, lowered to the fused PrimFuncs the pipeline sees.

Tests and ``bench/bench_kernels.py`` schedule these: each builder makes a Relax module with one op plus its
epilogue (folded-BN bias, activation, residual add), runs ``LegalizeOps`` + ``AnnotateTIROpPattern`` +
``FuseOps`` + ``FuseTIR`` and returns the module (``main`` calls one fused PrimFunc).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeavs.tvm_api import IRModule, relax, relax_transform, tirx


@dataclass(frozen=True)
class ConvCase:
    """``conv2d`` NCHW with ``groups``; ``act`` in {None, "relu", "relu6"}; ``residual`` adds an input."""

    cin: int
    cout: int
    h: int
    w: int
    k: int = 1
    stride: int = 1
    groups: int = 1
    act: str | None = "relu"
    residual: bool = False
    bias: bool = True

    @property
    def pad(self) -> int:
        return self.k // 2

    @property
    def out_hw(self) -> tuple[int, int]:
        return ((self.h + 2 * self.pad - self.k) // self.stride + 1,
                (self.w + 2 * self.pad - self.k) // self.stride + 1)

    @property
    def flops(self) -> int:
        oh, ow = self.out_hw
        return 2 * self.cout * oh * ow * (self.cin // self.groups) * self.k * self.k

    @property
    def label(self) -> str:
        kind = "dw" if self.groups == self.cin and self.groups > 1 else ("pw" if self.k == 1 else "conv")
        return (f"{kind}{self.k}x{self.k}s{self.stride}_{self.cin}to{self.cout}_{self.h}x{self.w}"
                + (f"_{self.act}" if self.act else "") + ("_res" if self.residual else ""))

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        oh, ow = self.out_hw
        arrs = [rng.standard_normal((1, self.cin, self.h, self.w), dtype=np.float32),
                (rng.standard_normal((self.cout, self.cin // self.groups, self.k, self.k), dtype=np.float32)
                 / np.sqrt(self.cin // self.groups * self.k * self.k)).astype(np.float32)]
        if self.bias:
            arrs.append(rng.standard_normal((1, self.cout, 1, 1), dtype=np.float32))
        if self.residual:
            arrs.append(rng.standard_normal((1, self.cout, oh, ow), dtype=np.float32))
        return arrs

    def reference(self, arrs: list[np.ndarray]) -> np.ndarray:
        x, w = arrs[0].astype(np.float64), arrs[1].astype(np.float64)
        p, s, g, k = self.pad, self.stride, self.groups, self.k
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        oh, ow = self.out_hw
        cpg, opg = self.cin // g, self.cout // g
        out = np.zeros((1, self.cout, oh, ow))
        for gi in range(g):
            xs = xp[0, gi * cpg:(gi + 1) * cpg]
            ws = w[gi * opg:(gi + 1) * opg]
            for dy in range(k):
                for dx in range(k):
                    patch = xs[:, dy:dy + s * (oh - 1) + 1:s, dx:dx + s * (ow - 1) + 1:s]
                    out[0, gi * opg:(gi + 1) * opg] += np.einsum("oc,chw->ohw", ws[:, :, dy, dx], patch)
        i = 2
        if self.bias:
            out += arrs[i]
            i += 1
        if self.act == "relu":
            out = np.maximum(out, 0)
        elif self.act == "relu6":
            out = np.clip(out, 0, 6)
        if self.residual:
            out += arrs[i]
        return out.astype(np.float32)

    def relax_module(self) -> IRModule:
        oh, ow = self.out_hw
        bb = relax.BlockBuilder()
        x = relax.Var("x", relax.TensorType((1, self.cin, self.h, self.w), "float32"))
        w = relax.Var("w", relax.TensorType((self.cout, self.cin // self.groups, self.k, self.k),
                                                  "float32"))
        params = [x, w]
        if self.bias:
            params.append(relax.Var("b", relax.TensorType((1, self.cout, 1, 1), "float32")))
        if self.residual:
            params.append(relax.Var("r", relax.TensorType((1, self.cout, oh, ow), "float32")))
        with bb.function("main", params):
            with bb.dataflow():
                y = bb.emit(relax.op.nn.conv2d(x, w, strides=self.stride, padding=self.pad,
                                               groups=self.groups))
                i = 2
                if self.bias:
                    y = bb.emit(relax.op.add(y, params[i]))
                    i += 1
                if self.act == "relu":
                    y = bb.emit(relax.op.nn.relu(y))
                elif self.act == "relu6":
                    y = bb.emit(relax.op.clip(y, 0.0, 6.0))
                if self.residual:
                    y = bb.emit(relax.op.add(y, params[i]))
                out = bb.emit_output(y)
            bb.emit_func_output(out)
        return bb.get()


def fuse(mod: IRModule) -> IRModule:
    """LegalizeOps + AnnotateTIROpPattern + FuseOps + FuseTIR + DeadCodeElimination (the pipeline's order)."""
    from edgeavs.tvm_api import tvm

    seq = tvm.transform.Sequential([
        relax_transform.LegalizeOps(), relax_transform.AnnotateTIROpPattern(), relax_transform.FuseOps(),
        relax_transform.FuseTIR(), relax_transform.DeadCodeElimination(),
    ])
    return seq(mod)


def prim_funcs(mod: IRModule) -> dict:
    """``{name: PrimFunc}`` of ``mod``."""
    return {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)}


# LightAVSeg-L / -T at 224 (SeaFormer stages; PANNs MobileNetV2 at its 101x64 log-mel): the shapes that carry
# the MACs. Inverted residual = 1x1 expand (ReLU) -> depthwise kxk (ReLU) -> 1x1 project (+ residual).
def model_cases(variant: str = "L") -> list[ConvCase]:
    if variant == "L":
        return [
            ConvCase(3, 16, 224, 224, k=3, stride=2),           # stem
            ConvCase(32, 128, 112, 112),                        # smb1 expand (L: 3x32 at 112)
            ConvCase(64, 256, 56, 56),                          # smb2 expand at 56
            ConvCase(256, 64, 56, 56, act=None, residual=True),  # smb2 project
            ConvCase(128, 512, 28, 28),                         # 28^2
            ConvCase(512, 128, 28, 28, act=None, residual=True),
            ConvCase(192, 768, 14, 14),                         # 14^2
            ConvCase(768, 192, 14, 14, act=None, residual=True),
            ConvCase(256, 1024, 7, 7),                          # 7^2
            ConvCase(1024, 256, 7, 7, act=None),
            ConvCase(320, 1920, 4, 4, act="relu6"),             # 4^2 (MLP)
            ConvCase(1920, 320, 4, 4, act=None, residual=True),
            ConvCase(128, 128, 56, 56, k=3, groups=128),        # depthwise
            ConvCase(256, 256, 56, 56, k=5, stride=2, groups=256),
            ConvCase(512, 512, 28, 28, k=5, groups=512),
            ConvCase(768, 768, 14, 14, k=3, stride=2, groups=768),
            ConvCase(1024, 1024, 7, 7, k=5, stride=2, groups=1024),
        ]
    raise ValueError(f"no case table for variant {variant!r}")
