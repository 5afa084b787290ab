"""Acoustic indices of soundscape ecology, per clip, from the clip's shared STFT.

Pure kernels: a batch of power spectrograms ``P = |STFT|**2`` shaped (clips, frames, bins) (the
same STFT the other features use, :func:`fieldkit.dsp.stft.power_blocks`) and, for the temporal
entropy, the clips' samples, in; float32 arrays out, one value per clip (:data:`INDICES`) or one
per frequency bin per clip (:data:`INDEX_SPECTRA`). ``A = sqrt(P)`` is the amplitude
spectrogram. Every definition is scikit-maad 1.5.2's (``maad.features``), checked on real
recordings in ``tests/dsp/test_indices.py``, except the NDSI's band edges (see :func:`ndsi`):

==============  ==============================================================================
aci             Acoustic complexity (Pieretti et al. 2011) over the whole clip:
                ``sum_f sum_t |A[t+1, f] - A[t, f]| / sum_t A[t, f]`` (``acoustic_complexity_index``)
adi, aei        Acoustic diversity / evenness (Villanueva-Rivera et al. 2011): Shannon entropy /
                Gini coefficient of the fraction of cells above a dB threshold re the clip's
                maximum amplitude in each band (``acoustic_diversity_index``, ``acoustic_eveness_index``)
bi              Bioacoustic index (Boelman et al. 2007), soundecology's form: area of the mean
                normalised amplitude spectrum in dB above its minimum in the band, / bin width
ndsi            (B - A) / (B + A) of the summed power of the biophony and anthrophony bands
                (Kasten et al. 2012)
ht, hf, h       Temporal entropy of the squared envelope (max |s| per ``envelope_frame``
                samples), spectral entropy of the mean power spectrum, and their product
                (Sueur et al. 2008; maad's "QUT" compatibility; entropies normalised to [0, 1])
aci_spectrum    ACI per frequency bin (Towsey et al. 2014's spectral ACI)
ent_spectrum    1 - temporal entropy of each bin's power (Towsey's spectral ENT)
evn_spectrum    Events per second in each bin: runs of cells >= ``activity_db_threshold`` dB
                above the bin's background (maad's ``median_equalizer``) (``spectral_events``)
act_spectrum    Fraction of such cells in each bin (``spectral_activity``)
==============  ==============================================================================

Degenerate input follows maad where maad defines it (an all-zero distribution has entropy 1
and Gini 0); a frequency bin with no energy has ACI 0, where maad's 0/0 gives NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special

from fieldkit.config.params import INDEX_SPECTRA, INDICES, FeatureParams, IndexParams
from fieldkit.dsp.filters import fft_frequencies

__all__ = [
    "INDEX_SPECTRA",
    "INDICES",
    "acoustic_complexity",
    "active_cells",
    "activity",
    "band_fractions",
    "bioacoustic",
    "compute_indices",
    "events_per_second",
    "gini",
    "median_equalised",
    "ndsi",
    "normalised_entropy",
    "shannon",
    "temporal_entropy",
]


def normalised_entropy(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy of ``x / sum(x)`` along ``axis`` divided by ``log(n)``, in [0, 1].

    ``x`` is non-negative; an all-zero slice has entropy 1 (maad.util.entropy). float64.
    Computed as ``log T - sum(x log x) / T`` (T the sum): one logarithm per value, no division.
    """
    x = np.asarray(x, np.float64)
    n = x.shape[axis]
    total = x.sum(axis=axis)
    safe = np.where(total > 0, total, 1.0)
    h = np.log(safe) - special.xlogy(x, x).sum(axis=axis) / safe
    return np.where(total > 0, np.maximum(h, 0.0) / np.log(n), 1.0)


def acoustic_complexity(amplitude: np.ndarray) -> np.ndarray:
    """ACI of each frequency bin: ``sum_t |A[t+1] - A[t]| / sum_t A``, shape (..., bins).

    ``amplitude`` is (..., frames, bins); a bin without energy gives 0.
    """
    a = np.asarray(amplitude, np.float64)
    total = a.sum(axis=-2)
    change = np.abs(np.diff(a, axis=-2)).sum(axis=-2)
    return np.where(total > 0, change / np.where(total > 0, total, 1.0), 0.0)


def _bins_between(fn: np.ndarray, low: float, high: float) -> np.ndarray:
    """maad.util.index_bw: bins from the one nearest ``low`` to the one nearest ``high``, inclusive."""
    lo, hi = fn[np.abs(fn - low).argmin()], fn[np.abs(fn - high).argmin()]
    return (fn >= lo) & (fn <= hi)


def band_fractions(power: np.ndarray, fn: np.ndarray, band_hz: tuple[float, float], step_hz: float,
                   db_threshold: float) -> np.ndarray:
    """Fraction of cells of each band louder than ``db_threshold`` dB re the clip's maximum.

    Parameters
    ----------
    power : ndarray, shape (clips, frames, bins)
    fn : ndarray, shape (bins,)
        Bin frequencies, Hz.
    band_hz, step_hz, db_threshold : (float, float), float, float
        ``floor((high - low) / step)`` bands of ``step_hz`` from ``low`` (``high`` cut at the
        last bin's frequency); each band's bins as :func:`_bins_between` (edges inclusive).

    Returns
    -------
    ndarray, float64, shape (clips, bands)
    """
    low, high = band_hz[0], min(band_hz[1], float(fn[-1]))
    n_bands = int(np.floor((high - low) / step_hz))
    peak = power.max(axis=(-2, -1), keepdims=True)
    # 20 log10(A / max A) >= t  <=>  P >= max P * 10 ** (t / 10), without a log per cell.
    above = power >= peak * np.float32(10.0 ** (db_threshold / 10.0))
    out = [above[..., _bins_between(fn, int(low + step_hz * k), int(low + step_hz * k + step_hz))]
           .mean(axis=(-2, -1)) for k in range(n_bands)]
    return np.stack(out, axis=-1) if out else np.zeros((power.shape[0], 0))


def shannon(fractions: np.ndarray) -> np.ndarray:
    """Shannon entropy (natural log) of the fractions as a distribution, per row: the ADI."""
    n = fractions.shape[-1]
    return normalised_entropy(fractions) * np.log(n) if n > 1 else np.zeros(fractions.shape[:-1])


def gini(fractions: np.ndarray) -> np.ndarray:
    """Gini coefficient of each row (0 for an all-zero row, as R's ``ineq``): the AEI."""
    x = np.sort(np.asarray(fractions, np.float64), axis=-1)
    n = x.shape[-1]
    total = x.sum(axis=-1)
    g = 2 * (x * np.arange(1, n + 1)).sum(axis=-1) / np.where(total > 0, total, 1.0) - (n + 1)
    return np.where(total > 0, g / n, 0.0)


def bioacoustic(amplitude: np.ndarray, fn: np.ndarray, band_hz: tuple[float, float]) -> np.ndarray:
    """Bioacoustic index, soundecology's form (maad ``R_compatible='soundecology'``), per clip.

    The mean over frames of ``A / max A`` in dB, minus its minimum within the band, summed over
    the band's bins and divided by the bin width in Hz. ``amplitude`` is (clips, frames, bins).
    """
    a = np.asarray(amplitude, np.float64)
    peak = a.max(axis=(-2, -1), keepdims=True)
    mean = (a / np.where(peak > 0, peak, 1.0)).mean(axis=-2)
    db = 20 * np.log10(np.maximum(mean, np.finfo(np.float64).tiny))
    inside = db[..., _bins_between(fn, *band_hz)]
    return (inside - inside.min(axis=-1, keepdims=True)).sum(axis=-1) / (fn[1] - fn[0])


def ndsi(power: np.ndarray, fn: np.ndarray, params: IndexParams) -> np.ndarray:
    """Normalised difference soundscape index ``(B - A) / (B + A)``, in [-1, 1], per clip.

    As maad's ``soundscape_index``: the power spectrogram is averaged over the bins of each
    ``ndsi_step_hz`` band ``[k step, (k + 1) step)`` (up to the last bin), and B and A are the
    sums over frames of the bands of the biophony and anthrophony ranges. A band belongs to a
    range ``(low, high)`` when its start lies in ``[low, high)`` — the paper's disjoint bands;
    maad also counts the band starting at ``high``, so its default anthrophony (0, 1000) is
    0-2 kHz and overlaps its biophony. A clip without energy in either range gives NaN.
    """
    step = params.ndsi_step_hz
    starts = np.arange(0.0, fn[-1], step)
    means = np.stack([power[..., (fn >= b) & (fn < b + step)].mean(axis=-1) for b in starts], axis=-1)
    totals = means.astype(np.float64).sum(axis=-2)  # (clips, bands)

    def energy(band: tuple[float, float]) -> np.ndarray:
        return totals[..., (starts >= band[0]) & (starts < band[1])].sum(axis=-1)

    bio, anthro = energy(params.ndsi_bio_hz), energy(params.ndsi_anthro_hz)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (bio - anthro) / (bio + anthro)


def temporal_entropy(clips: np.ndarray, frame: int) -> np.ndarray:
    """Ht: normalised entropy of the squared envelope (max |s| of each whole ``frame``), per clip.

    maad's ``temporal_entropy(s, compatibility="QUT", mode="fast", Nt=frame)``; ``clips`` is
    (clips, samples); samples after the last whole frame are not used.
    """
    n = clips.shape[-1] // frame
    env = np.abs(clips[:, : n * frame]).reshape(clips.shape[0], n, frame).max(axis=-1)
    return normalised_entropy(np.square(env.astype(np.float64))) if n > 1 else np.zeros(clips.shape[0])


def median_equalised(power: np.ndarray) -> np.ndarray:
    """maad's ``median_equalizer``: each bin's power above its median over frames, in units of
    (median - minimum), floored at 1 (0 dB). ``power`` is (clips, frames, bins); float64."""
    p = np.asarray(power, np.float64)
    # the median along frames reads a contiguous row per bin once frames are the last axis
    median = np.median(np.swapaxes(p, -1, -2), axis=-1)[..., None, :]
    norm = median - p.min(axis=-2, keepdims=True)
    norm = np.where(norm <= 0, p.max(axis=(-2, -1), keepdims=True), norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(norm > 0, (p - median) / norm, 0.0)
    return np.maximum(out, 1.0)


def active_cells(power: np.ndarray, threshold_db: float) -> np.ndarray:
    """Cells at or above ``threshold_db`` dB (10 log10) of the median-equalised spectrogram:
    ACT's and EVN's events, without a logarithm per cell. (clips, frames, bins) bool."""
    return median_equalised(power) >= 10.0 ** (threshold_db / 10.0)


def activity(on: np.ndarray) -> np.ndarray:
    """ACT per bin: the fraction of active frames (:func:`active_cells`); (clips, bins)."""
    return on.mean(axis=-2)


def events_per_second(on: np.ndarray, frame_s: float, min_s: float | None = None) -> np.ndarray:
    """EVN per bin: runs of active frames (:func:`active_cells`) per second; (clips, bins).

    The duration is ``(frames - 1) * frame_s`` (maad's ``spectral_events``); with ``min_s``,
    runs shorter than it are removed first by a morphological opening along time.
    """
    if min_s is not None:
        length = int(round(min_s / frame_s)) + 1
        structure = np.ones((1, length, 1), bool)
        on = ndimage.binary_dilation(ndimage.binary_erosion(on, structure), structure)
    starts = on[:, :1].sum(axis=-2) + (on[:, 1:] & ~on[:, :-1]).sum(axis=-2)
    duration = (on.shape[-2] - 1) * frame_s
    return starts / duration if duration > 0 else np.zeros(starts.shape)


def compute_indices(power: np.ndarray, clips: np.ndarray, sample_rate_hz: float,
                    params: FeatureParams) -> dict[str, np.ndarray]:
    """The acoustic indices of ``params.index_names`` for a batch of clips.

    Parameters
    ----------
    power : ndarray, float32, shape (clips, frames, n_fft // 2 + 1)
        ``|STFT|**2`` of each clip (:func:`fieldkit.dsp.stft.stft_power`).
    clips : ndarray, float32, shape (clips, samples)
        The clips themselves (the temporal entropy is a function of the waveform).
    sample_rate_hz : float
        Hz, > 0.
    params : FeatureParams
        ``index_names``, ``indices`` (bands and thresholds), ``n_fft`` and ``hop_length``.

    Returns
    -------
    dict of str to ndarray
        float32, (clips,) for :data:`INDICES` and (clips, bins) for :data:`INDEX_SPECTRA`.
    """
    wanted, ip = set(params.index_names), params.indices
    fn = fft_frequencies(sample_rate_hz, params.n_fft)
    amplitude = np.sqrt(power.astype(np.float64))
    out: dict[str, np.ndarray] = {}
    if wanted & {"aci", "aci_spectrum"}:
        out["aci_spectrum"] = acoustic_complexity(amplitude)
        out["aci"] = out["aci_spectrum"].sum(axis=-1)
    if "adi" in wanted:
        out["adi"] = shannon(band_fractions(power, fn, ip.adi_band_hz, ip.adi_step_hz, ip.adi_db_threshold))
    if "aei" in wanted:
        out["aei"] = gini(band_fractions(power, fn, ip.aei_band_hz, ip.aei_step_hz, ip.aei_db_threshold))
    if "bi" in wanted:
        out["bi"] = bioacoustic(amplitude, fn, ip.bi_band_hz)
    if "ndsi" in wanted:
        out["ndsi"] = ndsi(power, fn, ip)
    if wanted & {"hf", "h"}:
        out["hf"] = normalised_entropy(power.mean(axis=-2, dtype=np.float64))
    if wanted & {"ht", "h"}:
        out["ht"] = temporal_entropy(clips, ip.envelope_frame)
    if "h" in wanted:
        out["h"] = out["hf"] * out["ht"]
    if "ent_spectrum" in wanted:
        out["ent_spectrum"] = 1.0 - normalised_entropy(power, axis=-2)
    if wanted & {"evn_spectrum", "act_spectrum"}:
        on = active_cells(power, ip.activity_db_threshold)
        out["act_spectrum"] = activity(on)
        out["evn_spectrum"] = events_per_second(on, params.hop_length / sample_rate_hz, ip.event_min_s)
    return {name: out[name].astype(np.float32) for name in params.index_names}
