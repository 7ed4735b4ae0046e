"""Options several commands share, defined once, so that their names, types and help read the same
everywhere; and :func:`resolve_resolution`, the --resolution default those commands share."""

from __future__ import annotations

import click


def overwrite_option(what: str = "the output file"):
    """``--overwrite``: without it, an output that already exists is an error (one line, before
    any work); ``what`` names the outputs it lets the command replace."""
    return click.option("--overwrite", is_flag=True,
                        help=f"Replace {what} if it exists (without it, an existing output is an error).")


DEFAULT_RESOLUTION = 224
"""Input side without --resolution and without a checkpoint that records its training size."""

def _size_multiple() -> int:
    from edgeavs.model.config import VARIANTS

    return max(v.size_multiple for v in VARIANTS.values())


SIZE_MULTIPLE = _size_multiple()
"""What LightAVSeg needs of an input side (``VariantConfig.size_multiple``: 16; 80x112 compiles and verifies)."""

RESOLUTION_HELP = (f"Input size, N or HxW; sides multiples of {SIZE_MULTIPLE} (default: the size --checkpoint "
                   f"was trained at, else {DEFAULT_RESOLUTION}).")


def resolution_option(*names, help: str = RESOLUTION_HELP):
    """``--resolution N|HxW`` with no fixed default: :func:`resolve_resolution` picks it."""
    return click.option(*(names or ("--resolution",)), default=None, metavar="N|HxW", help=help)


def resolve_resolution(resolution, checkpoint, say=None) -> str:
    """``--resolution`` as given; else the frame size ``checkpoint`` was trained at (its ``config``,
    as ``edgeavs evaluate`` reads it); else :data:`DEFAULT_RESOLUTION`. ``say`` is told which size
    was used when it came from the checkpoint or the checkpoint did not record one."""
    if resolution is not None:
        return str(resolution)
    if checkpoint is None:
        return str(DEFAULT_RESOLUTION)
    from edgeavs.model.weights import read_checkpoint

    config = read_checkpoint(checkpoint).get("config")
    size = config.get("size") if isinstance(config, dict) else None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        if say:
            say(f"resolution {size}x{size}: the size {checkpoint} was trained at (--resolution to change it)")
        return str(size)
    if say:
        say(f"resolution {DEFAULT_RESOLUTION}x{DEFAULT_RESOLUTION}: {checkpoint} does not record the size it "
            "was trained at (--resolution to change it)")
    return str(DEFAULT_RESOLUTION)


# ---------------------------------------------------------------- model options, the same on every command

def _variant_names() -> list[str]:
    from edgeavs.model.config import ALIASES, VARIANTS

    return [*VARIANTS, *ALIASES]


def _canonical_variant(_ctx, _param, value):
    """``t``/``s``/``b``/``l`` (and any case) -> ``tiny``/... : the commands below see the full name."""
    if value is None:
        return None
    from edgeavs.model.config import get_variant

    return get_variant(value).name


def variant_option(*names, help: str, default=None, show_default: bool = False):
    """``--variant``: one :class:`click.Choice` (tiny, small, base, large; t, s, b, l for short) everywhere."""
    return click.option(*(names or ("--variant",)), type=click.Choice(_variant_names(), case_sensitive=False),
                        default=default, show_default=show_default, callback=_canonical_variant, help=help)


VARIANT_HELP = "Model size (default: the checkpoint's variant, else large)."

FUSION_HELP = ("Audio-visual interaction: lightavseg (ours), or a baseline of the paper's comparison on the same "
               "backbone and head: tpavi (AVSBench's TPAVI), avsegformer (AVSegFormer-style)")


def fusion_option(default=None, note: str = ". Default: the checkpoint's, else lightavseg.",
                  show_default: bool = False):
    from edgeavs.model.config import FUSIONS

    return click.option("--fusion", type=click.Choice(list(FUSIONS), case_sensitive=False), default=default,
                        show_default=show_default, help=FUSION_HELP + note)


def target_option(*names):
    """``--target NAME|YAML`` (compile, tune)."""
    return click.option(*(names or ("--target",)), default="host", show_default=True, metavar="NAME|YAML",
                        help="A target from targets/ (e.g. host) or the path to a target YAML.")


CHECKPOINT_HELP = ("An edgeavs checkpoint (train's best.pt or last.pt); without it, random weights (seed 0).")
