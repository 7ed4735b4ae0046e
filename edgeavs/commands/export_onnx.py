"""``edgeavs export-onnx``: the inference graph as an ONNX file (dynamo exporter, opset 18)."""

from __future__ import annotations

import click

from edgeavs.commands import overwrite_option, resolution_option, resolve_resolution
from edgeavs.commands.compile import _VARIANTS


@click.command("export-onnx", short_help="Export LightAVSeg's inference graph to ONNX.")
@click.option("--variant", type=click.Choice(_VARIANTS, case_sensitive=False), default=None,
              help="Model size (default: the checkpoint's variant, else large).")
@resolution_option()
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="An edgeavs checkpoint; without it, random init with seed 0.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=str),
              required=True, help="The .onnx file to write.")
@overwrite_option("the .onnx file")
def export_onnx(variant, resolution, checkpoint, output, overwrite):
    """Write ``(frames, waveform) -> logits`` as ONNX (torch.onnx.export, dynamo=True, opset 18),
    batch 1, the same graph ``edgeavs compile --via onnx`` imports."""
    from edgeavs.compiler import frontend
    from edgeavs.compiler.build import build_torch_model, check_resolution, resolve_weights
    from edgeavs.io.atomic import check_writable

    check_writable(output, "--output", overwrite=overwrite)
    resolved, weights = resolve_weights(variant, checkpoint)
    resolution = resolve_resolution(resolution, checkpoint, say=lambda m: click.echo(m, err=True))
    h, w = check_resolution(resolution, resolved)
    model = build_torch_model(resolved, weights, checkpoint)
    frontend.export_onnx(frontend.inference_graph(model), frontend.example_inputs(h, w), output)
    click.echo(output)
