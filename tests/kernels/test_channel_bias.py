"""kernels.channel_bias against numpy on fresh random inputs."""

from __future__ import annotations

import pytest

from kernels.channel_bias import ChannelBiasConfig, ChannelBiasWorkload, channel_bias_kernel, reference
from tests.kernels.conftest import assert_close, run_kernel


@pytest.mark.parametrize("wl", [
    ChannelBiasWorkload(n=2, c=16, h=8, w=8, a_batch=2),
    ChannelBiasWorkload(n=2, c=16, h=7, w=7, a_batch=1),
    ChannelBiasWorkload(n=1, c=32, h=14, w=14, a_batch=1, residual=True),
], ids=str)
@pytest.mark.parametrize("parallel", [False, True])
def test_matches_numpy(rng, wl, parallel):
    x = rng.standard_normal((wl.n, wl.c, wl.h, wl.w)).astype("float32")
    a = rng.standard_normal((wl.a_batch, wl.c, 1, 1)).astype("float32")
    cfg = ChannelBiasConfig(lanes=8, parallel=parallel)
    if wl.residual:
        r = rng.standard_normal(x.shape).astype("float32")
        got = run_kernel(channel_bias_kernel(wl, config=cfg), x, r, a, out_shape=x.shape)
        want = reference(x.astype("float64"), a.astype("float64"), r.astype("float64"))
    else:
        got = run_kernel(channel_bias_kernel(wl, config=cfg), x, a, out_shape=x.shape)
        want = reference(x.astype("float64"), a.astype("float64"))
    assert_close(got, want)
