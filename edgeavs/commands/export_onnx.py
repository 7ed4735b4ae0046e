"""``edgeavs export-onnx``: the inference graph as an ONNX file (dynamo exporter, opset 18)."""

from __future__ import annotations

import click

from edgeavs.commands.options import (CHECKPOINT_HELP, VARIANT_HELP, overwrite_option, resolution_option,
                                      resolve_resolution, variant_option)


@click.command("export-onnx", short_help="Export LightAVSeg's inference graph to ONNX.")
@variant_option(help=VARIANT_HELP)
@resolution_option()
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=str), default=None, help=CHECKPOINT_HELP)
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=str),
              required=True, help="The .onnx file to write.")
@overwrite_option("the .onnx file")
def export_onnx(variant, resolution, checkpoint, output, overwrite):
    """Write LightAVSeg's inference graph, (frames, waveform) -> logits at batch 1, as one ONNX file
    (torch.onnx.export with dynamo=True, opset 18): the graph `edgeavs compile --via onnx` imports."""
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
