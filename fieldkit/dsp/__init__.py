"""Layer 1: pure DSP kernels (ndarray + params -> ndarray). No files, no database.

Modules (import what you need; nothing is re-exported so that importing one kernel stays cheap):

- :mod:`~fieldkit.config.params`: the frozen, validated parameter model of each step (to_dict/from_dict);
- :mod:`~fieldkit.dsp.resample`: soxr resampling, whole or streamed (:class:`StreamingResampler`);
- :mod:`~fieldkit.dsp.bitdepth`: PCM -> float32 full scale, float -> int16 with TPDF dither;
- :mod:`~fieldkit.dsp.clipping`: clipping on the original samples (:class:`ClipCounter`);
- :mod:`~fieldkit.dsp.qc`: peak/RMS dBFS, DC, silence, NaN/Inf (:class:`QCAccumulator`);
- :mod:`~fieldkit.dsp.stft`, :mod:`~fieldkit.dsp.features`, :mod:`~fieldkit.dsp.filters`:
  librosa-compatible features from one shared STFT, :func:`compute_features` for batches.

Conventions: multichannel audio is ``(channels, frames)``; a batch of clips is
``(clips, samples)``; features are time-major ``(clips, frames, bins)``; everything is float32.
"""
