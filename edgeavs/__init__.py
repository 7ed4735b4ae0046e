"""edgeavs: LightAVSeg from PyTorch to a phone CPU, through Apache TVM."""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: `import edgeavs` must stay cheap and must not pull torch into processes
    # that only run a compiled artifact (edgeavs segment --artifact).
    if name in {"build_model", "load_visual_weights", "load_audio_weights",
                "save_checkpoint", "load_checkpoint", "VARIANTS"}:
        from edgeavs import model as _model

        return getattr(_model, name)
    raise AttributeError(f"module 'edgeavs' has no attribute {name!r}")


__all__ = ["__version__", "build_model", "load_visual_weights", "load_audio_weights",
           "save_checkpoint", "load_checkpoint", "VARIANTS"]
