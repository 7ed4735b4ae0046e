"""PANNs MobileNetV2 audio encoder (AudioSet) on a conv-STFT log-mel front end (SPEC §3).

Parameter names follow the official PANNs code (and torchlibrosa's front end) so that
``MobileNetV2_mAP=0.383.pth`` loads unchanged, minus the AudioSet classifier
``fc_audioset.*``, which is not part of LightAVSeg. The STFT is two Conv1d layers whose
weights are the windowed DFT basis: it compiles as an ordinary convolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeavs.model.config import AudioConfig


def hann_periodic(n: int) -> np.ndarray:
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)


def stft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary DFT bases times a periodic Hann window, ``[n_fft//2+1, 1, n_fft]``."""
    n = np.arange(n_fft, dtype=np.float64)
    k = np.arange(n_fft // 2 + 1, dtype=np.float64)
    phase = 2.0 * np.pi * np.outer(k, n) / n_fft
    w = hann_periodic(n_fft)
    real = (np.cos(phase) * w)[:, None, :]
    imag = (-np.sin(phase) * w)[:, None, :]
    return real.astype(np.float32), imag.astype(np.float32)


def _hz_to_mel(f):
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mel)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters, ``[n_fft//2+1, n_mels]`` (the ``melW`` layout)."""
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.T.astype(np.float32)


class _STFT(nn.Module):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        real, imag = stft_kernels(n_fft)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))


class Spectrogram(nn.Module):
    """Power spectrogram ``(N, 1, frames, n_fft//2+1)``: centred, reflect-padded conv-STFT."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft = n_fft
        self.stft = _STFT(n_fft, hop)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real = self.stft.conv_real(x)
        imag = self.stft.conv_imag(x)
        power = real * real + imag * imag  # (N, bins, frames)
        return power.transpose(1, 2)[:, None]


class LogmelFilterBank(nn.Module):
    """``10·log10(max(spec @ melW, 1e-10))`` with ref 1.0 and no top_db clipping."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        mel = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.mel_bins, cfg.fmin, cfg.fmax)
        self.melW = nn.Parameter(torch.from_numpy(mel))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(spec, self.melW)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


class InvertedResidual(nn.Module):
    """PANNs' MobileNetV2 block: ReLU6, downsampling by AvgPool after the depthwise conv."""

    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = round(inp * expand)
        self.use_res = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
            nn.AvgPool2d(stride),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class PANNsMobileNetV2(nn.Module):
    """``waveform (N, samples) -> A_0 (N, 1024)``, the PANNs fc1 embedding.

    Frozen in LightAVSeg: :meth:`train` keeps it in eval mode (BN statistics fixed) and its
    parameters have ``requires_grad=False``; dropout and SpecAugment are never applied.
    """

    def __init__(self, cfg: AudioConfig | None = None):
        super().__init__()
        cfg = cfg or AudioConfig()
        self.cfg = cfg
        self.spectrogram_extractor = Spectrogram(cfg.n_fft, cfg.hop)
        self.logmel_extractor = LogmelFilterBank(cfg)
        self.bn0 = nn.BatchNorm2d(cfg.mel_bins)
        ch = cfg.first_channels
        features: list[nn.Module] = [nn.Sequential(
            nn.Conv2d(1, ch, 3, 1, 1, bias=False), nn.AvgPool2d(2), nn.BatchNorm2d(ch), nn.ReLU6())]
        for t, c, n, s in cfg.blocks:
            for i in range(n):
                features.append(InvertedResidual(ch, c, s if i == 0 else 1, t))
                ch = c
        features.append(nn.Sequential(
            nn.Conv2d(ch, cfg.last_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cfg.last_channels), nn.ReLU6()))
        self.features = nn.Sequential(*features)
        self.fc1 = nn.Linear(cfg.last_channels, cfg.embed_dim)
        self._init_weights()

    def _init_weights(self):
        # He-normal over fan-in rather than PANNs' Xavier: the encoder is meant to carry the
        # AudioSet weights, and an untrained one (tests, compile without a checkpoint) must
        # still give a non-degenerate A_0 — with Xavier the activations vanish (~1e-11 at
        # the last block) and the audio path would be numerically invisible.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """``(N, samples) -> (N, 1, frames, mel_bins)`` after ``bn0``."""
        x = self.logmel_extractor(self.spectrogram_extractor(wave))
        return self.bn0(x.transpose(1, 3)).transpose(1, 3)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.features(self.logmel(wave))
        x = torch.mean(x, dim=3)
        x = torch.amax(x, dim=2) + torch.mean(x, dim=2)
        return F.relu(self.fc1(x))

    def frozen_tensor_names(self) -> list[str]:
        """The conv-STFT and mel tensors: fixed signal processing, not learned."""
        return ["spectrogram_extractor.stft.conv_real.weight",
                "spectrogram_extractor.stft.conv_imag.weight",
                "logmel_extractor.melW"]
