"""Helpers of the DSP tests: the shared recordings and error measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parents[1] / "data"  # small copies kept in the repo

#: Real recordings used for agreement with librosa: (relative path, seconds to use).
RECORDINGS = (
    "opensoundscape/birds_10s.wav",
    "scikit-maad/spinetail.wav",
    "avianz/Crickets_2000.wav",
    "librosa-data/456440__inspectorj__bird-whistling-robin-single-13.ogg",
)


def shared_file(relative: str) -> Path:
    """Path of a file under shared/data (or its copy in tests/data); skip when absent."""
    for root in (SHARED_DATA, TEST_DATA):
        if (root / relative).is_file():
            return root / relative
    pytest.skip(f"shared data file {relative} is not available at {SHARED_DATA}")


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """Norm-wise relative error ||a - e|| / ||e|| in float64."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30))


def max_rel_err(actual: np.ndarray, expected: np.ndarray, floor: float = 1e-3) -> float:
    """Largest element-wise relative error over elements above ``floor`` x the largest one."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    keep = np.abs(e) > floor * np.abs(e).max()
    return float(np.max(np.abs(a - e)[keep] / np.abs(e)[keep])) if keep.any() else 0.0
