"""Cached analysis constants equal librosa's and cannot be changed by a caller."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from fieldkit.config.params import WINDOWS
from fieldkit.dsp import filters


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [(16000, 1024, 64, 0.0, None), (22050, 2048, 128, 50.0, 8000.0), (48000, 512, 40, 300.0, None),
     (8000, 256, 20, 0.0, 3000.0)],
)
def test_mel_basis_equals_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = filters.mel_basis(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == np.float32 and ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_chroma", "tuning"),
    [(16000, 1024, 12, 0.0), (22050, 2048, 24, -0.3), (48000, 512, 12, 0.25), (8000, 256, 36, 0.1)],
)
def test_chroma_basis_equals_librosa(sr, n_fft, n_chroma, tuning):
    ours = filters.chroma_basis(sr, n_fft, n_chroma, tuning)
    ref = librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=tuning)
    assert ours.dtype == np.float32 and ours.shape == (n_chroma, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize(("name", "win_length", "n_fft"), [("hann", 1024, 1024),
                                                           ("hamming", 800, 1024),
                                                           ("blackman", 333, 512)])
def test_window_equals_librosa_padded_window(name, win_length, n_fft):
    ref = librosa.util.pad_center(librosa.filters.get_window(name, win_length, fftbins=True),
                                  size=n_fft)
    np.testing.assert_allclose(filters.window(name, win_length, n_fft), ref, atol=1e-15)
    np.testing.assert_allclose(filters.window(name, win_length, n_fft, "float32"),
                               ref.astype(np.float32), atol=1e-7)


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("length", [1, 2, 7, 400, 1023, 1024])
def test_windows_equal_scipy_periodic_windows(name, length):
    ref = scipy.signal.get_window(name, length, fftbins=True)
    np.testing.assert_allclose(filters.window(name, length, length), ref, rtol=0, atol=1e-15)


def test_dct_matrix_is_scipy_ortho_dct():
    x = np.random.default_rng(1).standard_normal((7, 40)).astype(np.float32)
    ref = scipy.fft.dct(x, type=2, norm="ortho", axis=-1)[:, :13]
    np.testing.assert_allclose(x @ filters.dct_matrix(40, 13), ref, rtol=1e-5, atol=1e-5)


def test_cached_constants_are_shared_and_read_only():
    a = filters.mel_basis(16000, 1024, 64, 0.0, None)
    assert a is filters.mel_basis(16000, 1024, 64, 0.0, None)
    for array in (a, filters.chroma_basis(16000, 1024, 12, 0.0), filters.window("hann", 64, 64),
                  filters.dct_matrix(64, 20), filters.fft_frequencies(16000, 1024)):
        with pytest.raises(ValueError):
            array[0] = 1
