"""The embedded default checkpoint: a LightAVSeg-T trained on the synthetic demo S4 task, shipped in the
package so that ``edgeavs demo`` segments for real with no download.

Only what training changed is stored (``default/<name>.npz``: the visual backbone, the reciprocal
encoder, the decoder and the head; parameters in float16, buffers in float32). The audio encoder
stays frozen during training at its random initialisation, so it is not stored: it is rebuilt from
the recorded seed (``build_model(variant, seed=seed)`` draws every weight in one fixed order) and
checked against the sha256 recorded at packing time, so a torch release that initialises
differently is a one-line error, not a silently different model. ``default/<name>.json`` records
how the weights were made (the commands, data seed, steps) and what they score on the demo test
split, measured on the stored (float16) weights.

Made by ``python bench/make_default_checkpoint.py`` (train, evaluate, :func:`pack`).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from edgeavs.errors import EdgeAVSError

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
DEFAULT_NAME = "tiny-s4"
FROZEN_PREFIX = "audio."  # the frozen, random-init PANNs encoder (and its log-mel front end)
RECIPE_FORMAT = "edgeavs-default-checkpoint/1"


def _paths(name: str) -> tuple[Path, Path]:
    return DEFAULT_DIR / f"{name}.npz", DEFAULT_DIR / f"{name}.json"


def available() -> list[str]:
    """Names of the embedded checkpoints."""
    return sorted(p.stem for p in DEFAULT_DIR.glob("*.json") if p.with_suffix(".npz").is_file())


def recipe(name: str = DEFAULT_NAME) -> dict:
    """The recorded recipe and scores of embedded checkpoint ``name``."""
    from edgeavs.io.structured import load_json

    npz, meta = _paths(name)
    if not meta.is_file() or not npz.is_file():
        raise EdgeAVSError(f"embedded checkpoint {name!r} is not in this installation "
                           f"(available: {', '.join(available()) or 'none'})")
    rec = load_json(meta, "embedded checkpoint recipe")
    if not isinstance(rec, dict) or rec.get("format") != RECIPE_FORMAT:
        raise EdgeAVSError(f"{meta}: not an embedded-checkpoint recipe ({RECIPE_FORMAT})")
    return rec


def state_digest(state: dict) -> str:
    """sha256 over ``state``'s entries in key order: name, dtype, shape and the raw bytes."""
    import numpy as np

    h = hashlib.sha256()
    for key in sorted(state):
        a = np.ascontiguousarray(state[key].detach().cpu().numpy())
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _frozen(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith(FROZEN_PREFIX)}


def _trained(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(FROZEN_PREFIX)}


def pack(model, out_npz, *, variant: str, fusion: str, seed: int) -> dict:
    """Store ``model``'s trained part in ``out_npz`` (atomically) and return the recipe fields that
    rebuild it: the seed whose random init is the frozen part, and the digests to check.

    Refuses a model whose frozen part is not that seed's random init (then it was not frozen)."""
    import numpy as np
    import torch

    from edgeavs.io.atomic import atomic_write
    from edgeavs.model.builder import build_model

    state = model.state_dict()
    fresh = build_model(variant, fusion=fusion, seed=seed).state_dict()
    if state_digest(_frozen(state)) != state_digest(_frozen(fresh)):
        raise EdgeAVSError(f"the model's audio encoder is not the seed-{seed} random init: it was "
                           "not frozen (or another seed was used), so it cannot be rebuilt from the seed")
    arrays = {}
    for key, value in _trained(state).items():
        a = value.detach().cpu()
        if key in dict(model.named_parameters()) and a.is_floating_point():
            a = a.to(torch.float16)
        arrays[key] = a.numpy()

    def write(f):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        f.write(buf.getvalue())

    atomic_write(Path(out_npz), write)
    params = sum(int(v.size) for k, v in arrays.items() if v.dtype == np.float16)
    return {"variant": variant, "fusion": fusion, "seed": seed,
            "frozen_prefix": FROZEN_PREFIX, "frozen_sha256": state_digest(_frozen(fresh)),
            "npz_sha256": hashlib.sha256(Path(out_npz).read_bytes()).hexdigest(),
            "stored_parameters": params, "stored_entries": len(arrays)}


def load_default(name: str = DEFAULT_NAME):
    """The embedded checkpoint ``name`` as an eval-mode model (float32 weights)."""
    import numpy as np
    import torch

    from edgeavs.model.builder import build_model

    rec = recipe(name)
    npz, _ = _paths(name)
    data = npz.read_bytes()
    if hashlib.sha256(data).hexdigest() != rec["npz_sha256"]:
        raise EdgeAVSError(f"{npz}: sha256 differs from the one its recipe records "
                           "(damaged installation: reinstall edgeavs)")
    model = build_model(rec["variant"], fusion=rec["fusion"], seed=rec["seed"])
    state = model.state_dict()
    got = state_digest(_frozen(state))
    if got != rec["frozen_sha256"]:
        raise EdgeAVSError(
            f"embedded checkpoint {name!r}: the audio encoder rebuilt from seed {rec['seed']} does not "
            f"match the recorded sha256 (torch {torch.__version__} initialises differently from the "
            f"torch {rec.get('torch', '?')} it was packed with)")
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}
    want = set(_trained(state))
    if set(stored) != want:
        missing, extra = sorted(want - set(stored)), sorted(set(stored) - want)
        raise EdgeAVSError(f"{npz}: does not fit LightAVSeg-{rec['variant']} "
                           f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for key, a in stored.items():
        t = torch.from_numpy(np.array(a))
        if tuple(t.shape) != tuple(state[key].shape):
            raise EdgeAVSError(f"{npz}: {key} has shape {tuple(t.shape)}, the model wants "
                               f"{tuple(state[key].shape)}")
        state[key] = t.to(state[key].dtype)
    model.load_state_dict(state, strict=True)
    return model.eval()


def write_checkpoint(path, name: str = DEFAULT_NAME) -> Path:
    """Write embedded checkpoint ``name`` as an ordinary edgeavs checkpoint at ``path`` (atomically),
    tagged with the embedded file's sha256 so that a copy can be recognised (:func:`is_copy`)."""
    from edgeavs.model.weights import save_checkpoint

    rec = recipe(name)
    t = rec["training"]
    save_checkpoint(load_default(name), path, embedded=name, embedded_sha256=rec["npz_sha256"],
                    config={"task": t["task"], "size": int(t["size"]), "seed": int(rec["seed"])})
    return Path(path)


def is_copy(path, name: str = DEFAULT_NAME) -> bool:
    """True when ``path`` is an edgeavs checkpoint written by :func:`write_checkpoint` from this
    installation's ``name``."""
    from edgeavs.model.weights import read_checkpoint

    try:
        obj = read_checkpoint(path)
        return obj.get("embedded") == name and obj.get("embedded_sha256") == recipe(name)["npz_sha256"]
    except EdgeAVSError:
        return False
