"""The conv-STFT log-mel front end equals the official PANNs front end (torchlibrosa,
with librosa's Slaney mel filters) to fp32 rounding."""

import numpy as np
import torch

from edgeavs.model.config import AudioConfig
from edgeavs.model.panns import PANNsMobileNetV2, mel_filterbank, stft_kernels


def test_mel_filterbank_equals_librosa():
    import librosa

    cfg = AudioConfig()
    ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.mel_bins,
                              fmin=cfg.fmin, fmax=cfg.fmax).T
    ours = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.mel_bins, cfg.fmin, cfg.fmax)
    assert ours.shape == (513, 64)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


def test_stft_kernels_are_windowed_dft():
    real, imag = stft_kernels(16)
    x = np.random.default_rng(0).standard_normal(16)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)
    spec = np.fft.rfft(x * w)
    np.testing.assert_allclose(real[:, 0] @ x, spec.real, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(imag[:, 0] @ x, spec.imag, rtol=1e-5, atol=1e-5)


def test_logmel_equals_torchlibrosa():
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    cfg = AudioConfig()
    ref_spec = Spectrogram(n_fft=cfg.n_fft, hop_length=cfg.hop, win_length=cfg.n_fft, window="hann",
                           center=True, pad_mode="reflect", freeze_parameters=True)
    ref_mel = LogmelFilterBank(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.mel_bins, fmin=cfg.fmin,
                               fmax=cfg.fmax, ref=1.0, amin=1e-10, top_db=None, freeze_parameters=True)
    ours = PANNsMobileNetV2(cfg).eval()
    wave = torch.randn(2, 32000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        s_ref, s_ours = ref_spec(wave), ours.spectrogram_extractor(wave)
        m_ref, m_ours = ref_mel(s_ref), ours.logmel_extractor(s_ours)
    rel = lambda a, b: float((a - b).norm() / b.norm())
    assert s_ours.shape == s_ref.shape == (2, 1, 101, 513)
    assert rel(s_ours, s_ref) <= 1e-5
    assert rel(m_ours, m_ref) <= 1e-5
