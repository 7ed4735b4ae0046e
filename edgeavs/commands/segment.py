"""``edgeavs segment``: overlay the sounding pixels on a video (see :mod:`edgeavs.segment`)."""

from __future__ import annotations

from pathlib import Path

import click

from edgeavs.commands.options import (DEFAULT_RESOLUTION, SIZE_MULTIPLE, overwrite_option, resolution_option,
                                      resolve_resolution, variant_option)
from edgeavs.errors import EdgeAVSError

HELP = """Segment VIDEO: mark, on every frame, the pixels that make the sound.

\b
Decodes any container/codec FFmpeg reads (PyAV), frame by frame: memory stays flat
whatever the video's length (the audio is a ring of the last --window seconds plus what
the file interleaves ahead of the video; streams more than 10 s apart are refused).
Audio is mixed to mono and resampled to 32 kHz with libswresample (av.AudioResampler),
which keeps its filter state across packets, so the streamed result equals resampling
the whole track.

\b
Each frame at time t sees the frame resized to the model's input and the causal audio
window of --window seconds ending at t (zero-padded at the start of the video). The model
takes exactly 1 s (32000 samples at 32 kHz): a shorter --window is the last --window
seconds with silence before them; longer windows are refused.

\b
Writes OUTPUT (default VIDEO_seg.mp4 beside VIDEO): the video with the mask (sigmoid >
--threshold) blended in magenta at --alpha, same frame rate and duration, with the
original audio re-encoded to AAC. Outputs appear complete or not at all; one that
already exists is an error unless --overwrite.

\b
--artifact runs a compiled artifact (edgeavs compile) on TVM's runtime alone, without
torch; --checkpoint runs an edgeavs checkpoint in PyTorch eager at --resolution (default:
the size it was trained at).
"""


@click.command("segment", help=HELP, short_help="Overlay the sounding pixels on a video.")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--artifact", type=click.Path(path_type=Path), metavar="DIR",
              help="A compiled artifact (edgeavs compile), run on TVM's runtime.")
@click.option("--checkpoint", type=click.Path(path_type=Path), metavar="FILE",
              help="An edgeavs checkpoint, run in PyTorch eager.")
@variant_option(help="With --checkpoint: the variant it must hold (default: the checkpoint's).")
@resolution_option(help=f"With --checkpoint: the model's input, N or HxW, sides multiples of {SIZE_MULTIPLE} "
                        f"(default: the size the checkpoint was trained at, else {DEFAULT_RESOLUTION}); an "
                        "artifact's is fixed.")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), metavar="FILE",
              help="Overlay video to write (default: VIDEO_seg.mp4 beside VIDEO).")
@click.option("--masks", "masks_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Also write one PNG mask per inferred frame into this new or empty directory.")
@click.option("--fps", type=float,
              help="Run the model at most F times per second of video; frames in between "
                   "reuse the last mask (the output keeps every frame).")
@click.option("--window", type=float, default=1.0, show_default=True,
              help="Seconds of audio ending at each frame, in (0, 1].")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Mask = sigmoid(logits) > threshold.")
@click.option("--alpha", type=float, default=0.5, show_default=True, help="Overlay opacity.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write a summary: frames, model latency (median, p90), end-to-end fps, "
                   "real-time factor (wall/video time), model fingerprint.")
@click.option("--threads", type=click.IntRange(min=1),
              help="CPU threads for the model (default: the runtime's own choice).")
@click.option("--silent-audio", is_flag=True,
              help="Accept a video without audio and run on silence. Off by default: the "
                   "model segments what makes the sound, so on silence its masks are meaningless.")
@overwrite_option("the overlay video, the --json summary and a --masks folder of earlier masks")
def segment(video, artifact, checkpoint, variant, resolution, out, masks_dir, fps, window,
            threshold, alpha, json_path, threads, silent_audio, overwrite):
    from edgeavs.io.atomic import check_writable
    from edgeavs.segment import Segmenter, check_masks_dir, check_output_path
    from edgeavs.video import MediaReader

    if (artifact is None) == (checkpoint is None):
        raise EdgeAVSError("pass exactly one of --artifact DIR or --checkpoint FILE")
    if artifact is not None and variant is not None:
        raise EdgeAVSError("--variant goes with --checkpoint; an artifact's variant is in its manifest")
    if artifact is not None and resolution is not None:
        raise EdgeAVSError("--resolution goes with --checkpoint; an artifact's input size is fixed "
                           "when it is compiled")
    out_given = out
    if out is None:
        out = video.with_name(f"{video.stem}_seg.mp4")
    seg_args = dict(window=window, threshold=threshold, alpha=alpha, fps=fps)
    Segmenter(None, **seg_args)  # option ranges, before anything is loaded
    check_output_path(out, "output", overwrite)
    if json_path is not None:
        check_output_path(json_path, "--json", overwrite)
    if masks_dir is not None:
        check_masks_dir(masks_dir, overwrite)
    check_writable(out, "output" if out_given is None else "--output")
    if json_path is not None:
        check_writable(json_path, "--json")
    if masks_dir is not None:
        check_writable(masks_dir, "--masks", kind="dir")
    MediaReader(video, allow_silent=silent_audio).close()  # fail fast on a bad input

    if artifact is not None:
        from edgeavs.compiler.artifact import use_runtime_only
        from edgeavs.segment import ArtifactPredictor

        use_runtime_only()  # this process only runs the artifact: TVM's runtime library, not its compiler
        predictor = ArtifactPredictor(artifact, threads=threads)
    else:
        from edgeavs.compiler.build import parse_resolution
        from edgeavs.segment_torch import TorchPredictor

        resolution = resolve_resolution(resolution, checkpoint, say=lambda m: click.echo(m, err=True))
        predictor = TorchPredictor(checkpoint, variant=variant, resolution=parse_resolution(resolution),
                                   threads=threads)
    summary = Segmenter(predictor, **seg_args).run(video, out=out, masks_dir=masks_dir,
                                                   json_path=json_path, silent_audio=silent_audio,
                                                   overwrite=overwrite)
    lat = summary["model_latency_ms"]
    click.echo(f"{summary['frames']} frames ({summary['inferred_frames']} inferred), model "
               f"{lat['median']:.1f} ms median / {lat['p90']:.1f} ms p90, "
               f"{summary['end_to_end_fps']:.1f} frames/s end to end, "
               f"real-time factor {summary['real_time_factor']:.2f}")
    click.echo(f"wrote {out}")
    if masks_dir is not None:
        click.echo(f"wrote {masks_dir}/ ({summary['inferred_frames']} PNG masks)")
    if json_path is not None:
        click.echo(f"wrote {json_path}")
