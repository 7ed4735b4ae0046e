"""``compile_artifact``: a LightAVSeg variant -> an artifact directory (see ``artifact.py``).

torch and TVM share this process (unavoidable: the importer needs both); nothing is timed here.
"""

from __future__ import annotations

import datetime as _dt
import numbers
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgeavs.compiler.artifact import VIA
from edgeavs.errors import EdgeAVSError

DEFAULT_VARIANT = "large"
DEFAULT_SEED = 0
"""Random-init artifacts (no checkpoint) use this seed; see ``edgeavs.model.builder.build_reference_model``."""


MAX_SIDE = 4096
"""Largest input side accepted. Memory grows with the pixels: PyTorch eager LightAVSeg-L peaks at 0.68 GiB at
720x1280 (bench/results/scaling.json, about 0.35 KiB per pixel), so ~6 GiB at 4096x4096, and the compile more;
100000x100000 would need 112 GiB for the float32 input frame alone."""


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def parse_resolution(text) -> tuple[int, int]:
    """``224`` or ``HxW`` (e.g. ``224x320``) -> ``(H, W)``; each side 1..:data:`MAX_SIDE` (a one-line
    EdgeAVSError otherwise). A ``(H, W)`` pair (a manifest's) is checked the same way."""
    if isinstance(text, (tuple, list)):
        if len(text) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in text):
            shown = repr(list(text)) if len(repr(text)) <= 60 else repr(text)[:60] + "..."
            raise EdgeAVSError(f"resolution {shown} is not a pair of integers [H, W]")
        h, w = int(text[0]), int(text[1])
    else:
        shown = str(text).strip()
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:[xX×]\s*([0-9]+))?\s*", str(text))
        if not m:
            cut = text if len(str(text)) <= 60 else str(text)[:60] + "..."
            raise EdgeAVSError(f"resolution {cut!r} is not N or HxW (e.g. 224 or 224x320)")
        if max(len(g.lstrip("0")) for g in m.groups() if g) > 6:  # also keeps int() within its digit limit
            raise EdgeAVSError(f"resolution {shown[:20]}{'...' if len(shown) > 20 else ''}: sides above "
                               f"{MAX_SIDE} are refused (memory grows with the pixels)")
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) else h
    if h <= 0 or w <= 0:
        raise EdgeAVSError(f"resolution {h}x{w}: sides must be positive")
    if h > MAX_SIDE or w > MAX_SIDE:
        frame = 12 * h * w  # bytes of the float32 1x3xHxW input
        raise EdgeAVSError(f"resolution {h}x{w}: sides above {MAX_SIDE} are refused (memory grows with the "
                           f"pixels: LightAVSeg-L needs ~6 GiB at {MAX_SIDE}x{MAX_SIDE}"
                           + (f", the float32 input frame alone {_gib(frame)} at {h}x{w})" if frame >= 2**30
                              else ")"))
    return h, w


def check_resolution(resolution, variant: str) -> tuple[int, int]:
    from edgeavs.model.config import get_variant

    h, w = parse_resolution(resolution)
    cfg = get_variant(variant)
    k = cfg.size_multiple
    if h <= 0 or w <= 0 or h % k or w % k:
        raise EdgeAVSError(f"resolution {h}x{w}: LightAVSeg-{cfg.name} needs sides that are "
                           f"positive multiples of {k}")
    return h, w


def resolve_weights(variant: str | None, checkpoint=None, seed: int = DEFAULT_SEED,
                    interaction: str | None = None):
    """``(variant, weights)``: the variant to build and the manifest's weights record.

    ``interaction``: the audio-visual fusion of a random-init model (``lightavseg``, ``tpavi``,
    ``avsegformer``); a checkpoint carries its own, which must then agree.
    """
    from edgeavs.model.config import FUSIONS, get_variant

    if interaction is not None and interaction not in FUSIONS:
        raise EdgeAVSError(f"--fusion {interaction!r}: expected one of {', '.join(FUSIONS)}")
    if checkpoint is None:
        name = get_variant(variant or DEFAULT_VARIANT).name
        return name, {"storage": "bound", "source": "random-init", "seed": int(seed),
                      "fusion": interaction or "lightavseg"}
    from edgeavs.compiler.artifact import file_sha256
    from edgeavs.model import read_checkpoint

    path = Path(checkpoint)
    if not path.is_file():
        raise EdgeAVSError(f"checkpoint {checkpoint} not found")
    ck = read_checkpoint(path)
    ck_variant, ck_fusion = ck["variant"], ck.get("fusion", "lightavseg")
    if variant is not None and get_variant(variant).name != ck_variant:
        raise EdgeAVSError(f"{checkpoint}: checkpoint is LightAVSeg-{ck_variant}, not the "
                           f"requested variant {get_variant(variant).name}")
    if interaction is not None and interaction != ck_fusion:
        raise EdgeAVSError(f"{checkpoint}: checkpoint has the {ck_fusion} fusion, not the "
                           f"requested --fusion {interaction}")
    return ck_variant, {"storage": "bound", "source": "checkpoint", "fusion": ck_fusion,
                        "checkpoint_sha256": file_sha256(path),
                        "checkpoint_path": str(path.absolute())}


def build_torch_model(variant: str, weights: dict, checkpoint=None):
    from edgeavs.model.builder import build_reference_model

    if weights["source"] == "checkpoint":
        return build_reference_model(variant, checkpoint=checkpoint or weights["checkpoint_path"])
    return build_reference_model(variant, seed=weights["seed"],
                                 fusion=weights.get("fusion", "lightavseg"))


def import_model(model, resolution, via: str, aux: bool = False, workdir=None):
    """Import the inference graph of ``model`` to Relax: ``(mod, params, output_names)``."""
    from edgeavs.compiler import frontend

    h, w = resolution
    inputs = frontend.example_inputs(h, w)
    graph = frontend.inference_graph(model, aux=aux)
    names = frontend.aux_names(model, *inputs) if aux else ["logits"]
    if via == "export":
        mod, params = frontend.import_export(graph, inputs)
    elif via == "onnx":
        import tempfile

        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            path = frontend.export_onnx(graph, inputs, Path(tmp) / "model.onnx",
                                        output_names=[n.replace(".", "_") for n in names])
            mod, params = frontend.import_onnx(path)
    else:
        raise EdgeAVSError(f"unknown import route {via!r}; choose one of: {', '.join(VIA)}")
    return mod, params, names


@dataclass(frozen=True)
class ModelSource:
    """A resolved model to import: what :func:`prepare` checked (variant, weights record, resolution); its
    :meth:`import_relax` builds the torch model and imports it to Relax. ``edgeavs compile`` and ``edgeavs tune``
    both start here."""

    variant: str
    weights: dict
    checkpoint: object
    resolution: tuple

    def import_relax(self, via: str = "export", aux: bool = False, workdir=None):
        """``(mod, params, output_names, seconds)``: the torch model built and imported (then dropped)."""
        model = build_torch_model(self.variant, self.weights, self.checkpoint)
        t0 = time.perf_counter()
        mod, params, names = import_model(model, self.resolution, via, aux=aux, workdir=workdir)
        seconds = time.perf_counter() - t0
        del model
        return mod, params, names, seconds


def prepare(variant: str | None, checkpoint=None, resolution="224", *, seed: int = DEFAULT_SEED,
            interaction: str | None = None) -> ModelSource:
    """The opening step of compile and tune: resolve the weights (a checkpoint, or random init with ``seed``)
    and check the resolution for the variant; one-line EdgeAVSErrors name what is wrong. Import with
    ``.import_relax()``."""
    variant, weights = resolve_weights(variant, checkpoint, seed, interaction)
    h, w = check_resolution(resolution, variant)
    return ModelSource(variant=variant, weights=weights, checkpoint=checkpoint, resolution=(h, w))


PRECISIONS = ("fp32", "fp16", "int8")
"""What ``compile --precision`` builds (the same list as ``edgeavs.compiler.records.PRECISIONS``)."""
ACCUMULATE = {"fp32": "float32", "fp16": "float16"}
"""``--accumulate``: the accumulator of an fp16 build's MAC layers."""


def check_precision(precision: str, tgt, accumulate: str = "fp32") -> None:
    """Refuse, in one line, a precision ``tgt`` cannot run: fp16 on an AArch64 target needs ``+fullfp16``
    (x86 has no fp16 arithmetic LLVM uses: host fp16 builds convert to fp32 around every op, for checking)."""
    if precision not in PRECISIONS:
        raise EdgeAVSError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if accumulate not in ACCUMULATE:
        raise EdgeAVSError(f"--accumulate {accumulate!r}: expected one of {', '.join(ACCUMULATE)}")
    if precision != "fp16" and accumulate != "fp32":
        raise EdgeAVSError(f"--accumulate applies to --precision fp16 (an {precision} build accumulates in "
                           + ("int32)" if precision == "int8" else "fp32)"))
    triple = tgt.mtriple or ""
    if precision == "int8" and triple.startswith(("aarch64", "arm64")) and "+dotprod" not in tgt.mattr:
        raise EdgeAVSError(f"--precision int8: target {tgt.name} ({tgt.source or tgt.mcpu}) has no +dotprod in "
                           f"its mattr {list(tgt.mattr)}: the int8 kernels need sdot")
    if precision == "fp16" and triple.startswith(("aarch64", "arm64")) and "+fullfp16" not in tgt.mattr:
        raise EdgeAVSError(f"--precision fp16: target {tgt.name} ({tgt.source or tgt.mcpu}) has no +fullfp16 "
                           f"in its mattr {list(tgt.mattr)}: its cores cannot compute in fp16")


def compile_artifact(out, *, target="host", variant: str | None = None, checkpoint=None,
                     resolution="224", via: str = "export", dump_ir=None,
                     seed: int = DEFAULT_SEED, aux: bool = False, fusion: bool = True,
                     schedules: bool = True, records=None, log=None,
                     interaction: str | None = None, link_weights: bool = True,
                     precision: str = "fp32", accumulate: str = "fp32", calibration=None,
                     calibration_frames: int | None = None, int8_min_snr_db: float | None = None) -> dict:
    """Compile LightAVSeg to the artifact directory ``out`` and return its manifest.

    ``target``: a name from ``targets/`` or a YAML path (or a loaded ``Target``).
    ``checkpoint``: an edgeavs checkpoint; without it, random init with ``seed``.
    ``aux``: also output every named intermediate (per-layer verification).
    ``schedules``: edgeavs's CPU schedules (False: TVM's default lowering, for comparison).
    ``records``: a tuning records directory (``edgeavs tune``); refused, in one line, when
    its fingerprint does not match the target.
    ``fusion``: run edgeavs's fusion passes; ``interaction``: the model's audio-visual fusion
    (``lightavseg`` default, or a baseline: ``tpavi``, ``avsegformer``) for random-init weights.
    ``link_weights``: the weights as data inside ``model.so`` that ``main`` views in place
    (:mod:`edgeavs.compiler.linked_weights`; False: VM constants, copied out at load, as before).
    ``precision``: ``fp32`` or ``fp16`` (the convs and matmuls in half precision, see
    ``edgeavs.passes.to_fp16``; ``accumulate`` ``fp32`` or ``fp16`` their accumulator); recorded in the
    manifest, and ``records`` must have been tuned for the same precision. ``int8``: the 1x1 convs in int8
    (``edgeavs.passes.int8_conv``), calibrated on ``calibration_frames`` frames of the AVSBench-layout tree
    ``calibration`` (``edgeavs.compiler.calibrate``; sites below ``int8_min_snr_db`` stay fp32).
    The directory appears complete or not at all (built beside it, then renamed).
    """
    from edgeavs import __version__
    from edgeavs.compiler.artifact import staging_dir, write_manifest
    from edgeavs.targets import Target, load_target

    t_start = time.perf_counter()
    say = log or (lambda _msg: None)
    if via not in VIA:
        raise EdgeAVSError(f"unknown import route {via!r}; choose one of: {', '.join(VIA)}")
    tgt = target if isinstance(target, Target) else load_target(target)
    check_precision(precision, tgt, accumulate)
    source = prepare(variant, checkpoint, resolution, seed=seed, interaction=interaction)
    variant, weights, (h, w) = source.variant, source.weights, source.resolution
    from edgeavs.compiler import calibrate

    calibrate.check_arguments(precision, calibration, calibration_frames)
    if precision == "int8":
        clips, calib_info = calibrate.calibration_inputs(
            calibration, (h, w), calibration_frames or calibrate.DEFAULT_FRAMES)
    out = Path(out)
    knobs, records_info = None, None
    if records is not None:
        from edgeavs.compiler.records import RecordsDir

        rec = RecordsDir(records).open(tgt, precision)
        knobs = rec.read_knobs() or None
        records_info = rec.info()  # counts, precision and cost source (measured, or projected cycles)

    from edgeavs.compiler.pipeline import run_pipeline
    from edgeavs.tvm_api import llvm_version, tvm, tvm_version

    with staging_dir(out) as tmp:
        say(f"LightAVSeg-{variant} {h}x{w} ({weights['fusion']} fusion), weights: {weights['source']}, via {via}, "
            f"target {tgt.name} ({tgt.mcpu}, {tgt.num_cores} cores)"
            + ("" if precision == "fp32" else f", {precision} (accumulate {accumulate})"))
        mod, params, out_names, t_import = source.import_relax(via, aux=aux, workdir=tmp)
        say(f"  import           {t_import:7.2f} s")
        tvm_target = tgt.to_tvm()
        from edgeavs.compiler.breakdown import collect_function_table

        linked = [] if link_weights else None  # the weights, as data in model.so (linked_weights)
        with collect_function_table() as table:  # per function: class, schedule, flops (edgeavs profile)
            common = dict(dump_dir=dump_ir, fusion=fusion, log=say, schedules=schedules,
                          schedule_configs={"functions": knobs} if knobs else None, records=records,
                          linked_weights=linked, precision=precision, accumulate=ACCUMULATE[accumulate])
            if precision == "int8":
                # calibrate on the module the precision phase rewrites, then go on from there
                mod, front = run_pipeline(mod, tvm_target, params, stop="edgeavs-fusion", **common)
                plan = calibrate.plan(mod, clips, log=say, calibration=calib_info,
                                      min_snr_db=calibrate.MIN_SNR_DB if int8_min_snr_db is None
                                      else float(int8_min_snr_db))
                mod, report = run_pipeline(mod, tvm_target, None, start="precision", int8_plan=plan, **common)
                report["fusion"] = front["fusion"]
                report["phase_seconds"] = {**front["phase_seconds"], "calibrate": plan.report["seconds"],
                                           **report["phase_seconds"]}
            else:
                mod, report = run_pipeline(mod, tvm_target, params, **common)
        if table.functions is not None and report["schedules"].get("enabled"):
            report["schedules"]["functions"] = table.functions
        t0 = time.perf_counter()
        try:
            ex = tvm.compile(mod, target=tvm_target, relax_pipeline=None)
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            raise EdgeAVSError(f"code generation failed: {lines[-1] if lines else type(exc).__name__}") from exc
        with tempfile.TemporaryDirectory(prefix="edgeavs-weights-") as blob_dir:
            if linked:
                from edgeavs.compiler.linked_weights import weights_module

                ex.mod.import_module(weights_module(linked, blob_dir))
            libs = _link(ex, tmp, tgt, say)
        t_codegen = time.perf_counter() - t0
        say(f"  codegen+link     {t_codegen:7.2f} s")
        outputs = _output_specs(mod, out_names)
        manifest = {
            "edgeavs": __version__,
            "tvm": tvm_version(),
            "llvm": llvm_version(),
            "target": tgt.tvm_dict(),
            "target_fingerprint": tgt.fingerprint(),
            "target_name": tgt.name,
            "link": tgt.link,
            "variant": variant,
            "resolution": [h, w],
            "via": via,
            "aux": bool(aux),
            "weights": weights,
            "precision": precision,
            "precision_report": report["precision"],
            "linked_weights": {"tensors": len(linked or []), "bytes": int(sum(a.nbytes for a in linked or []))},
            "inputs": [{"name": "frames", "shape": [1, 3, h, w], "dtype": "float32"},
                       {"name": "waveform", "shape": [1, 32000], "dtype": "float32"}],
            "outputs": outputs,
            "library": libs["library"],
            "libraries": libs["libraries"],
            "libraries_skipped": libs["skipped"],
            "fusion": report["fusion"],
            "schedules": report["schedules"],
            "records": records_info,
            "compile_seconds": {"import": round(t_import, 3), **report["phase_seconds"],
                                "codegen": round(t_codegen, 3),
                                "total": round(time.perf_counter() - t_start, 3)},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        manifest = write_manifest(tmp, manifest)
    return manifest


def _link(ex, directory: Path, tgt, say) -> dict:
    """Link the executable for every place it runs (edgeavs.device.export: host cc, cross_cc,
    the Android NDK + an AArch64 Linux twin); the manifest records which file is which."""
    try:
        from edgeavs.device.export import export_libraries
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("edgeavs.device"):
            raise
        from edgeavs.compiler.artifact import LIBRARY
        from edgeavs.tvm_api import library_exporter

        ex.export_library(str(directory / LIBRARY), fcompile=library_exporter(tgt.link, tgt.cross_cc))
        return {"library": LIBRARY, "libraries": [{"file": LIBRARY, "role": tgt.link}], "skipped": []}
    return export_libraries(ex, directory, tgt, log=say)


def _output_specs(mod, names):
    """Names, shapes and dtypes of ``main``'s outputs (static shapes)."""
    from edgeavs.tvm_api import relax

    ty = mod["main"].ret_ty
    fields = list(ty.fields) if isinstance(ty, relax.TupleType) else [ty]
    if len(fields) != len(names):
        raise EdgeAVSError(f"the compiled graph has {len(fields)} outputs, expected {len(names)}")
    specs = []
    for name, f in zip(names, fields):
        shape = [int(d) for d in f.shape] if getattr(f, "shape", None) is not None else None
        specs.append({"name": name, "shape": shape, "dtype": str(f.dtype)})
    return specs
