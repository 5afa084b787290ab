"""Spectrograms with their annotations, and the render cache of ``fieldkit serve``."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from fieldkit.io.render.media import spectrogram_png
from fieldkit.listen.preview import find_recording
from fieldkit.testing.signals import tone
from fieldkit.web import renders
from fieldkit.workspace import open_workspace


def cyan_pixels(path) -> int:
    rgb = imread(path)[..., :3]
    return int(np.sum((rgb[..., 0] < 0.2) & (rgb[..., 1] > 0.8) & (rgb[..., 2] > 0.8)))


def test_annotations_are_drawn_where_they_are(tmp_path):
    samples = tone(2_000, 4.0, 16_000, amplitude=0.5)
    plain = spectrogram_png(tmp_path / "plain.png", samples, 16_000, "plain")
    boxed = spectrogram_png(tmp_path / "boxed.png", samples, 16_000, "boxed", boxes=((1.0, 2.0, 1_000.0, 3_000.0, "call"),))
    assert cyan_pixels(plain) == 0 and cyan_pixels(boxed) > 200
    rgb = imread(boxed)[..., :3]
    cyan = (rgb[..., 0] < 0.2) & (rgb[..., 1] > 0.8) & (rgb[..., 2] > 0.8)
    columns = np.flatnonzero(cyan.any(axis=0))
    # the box spans 1-2 s of a 4 s axis: its edges sit in the left half of the plotting area
    assert columns.min() > 0.1 * rgb.shape[1] and columns.max() < 0.6 * rgb.shape[1]


def test_renders_are_cached_in_the_workspace_by_content(served):
    with open_workspace(served["root"]) as ws:
        rec = find_recording(ws, served["annotated"])
        first = renders.spectrogram(ws, rec, renders.Window(0.0, 5.0))
        stamp = first.stat().st_mtime_ns
        again = renders.spectrogram(ws, rec, renders.Window(0.0, 5.0))
        other = renders.spectrogram(ws, rec, renders.Window(1.0, 5.0))
        sound = renders.audio(ws, rec, "excerpt", renders.Window(0.0, 5.0))
    assert again == first and again.stat().st_mtime_ns == stamp  # served from the cache, not drawn again
    assert other != first and first.parent == served["root"] / "cache" / "serve"
    assert first.name.startswith(rec.sha256) and sound.read_bytes()[:4] == b"RIFF"
    assert cyan_pixels(first) > 0  # the demo's annotation of this recording is drawn
    assert not list(first.parent.glob(".render-*"))  # no half-written render left behind


@pytest.mark.parametrize("rate, modes", [(32_000, ("excerpt",)),
                                         (384_000, ("excerpt", "time-expansion", "heterodyne", "frequency-division"))])
def test_ultrasonic_recordings_offer_time_expansion_and_heterodyne(served, rate, modes):
    rec = next(r for r in served["rows"] if r.sample_rate_hz == rate)
    assert renders.modes_for(rec) == modes
