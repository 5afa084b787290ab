"""The channel convention shared by the multichannel kernels.

Multichannel audio is ``(channels, frames)`` (channel-major, so one channel is a contiguous
row and a channel can be handed to the feature kernels as a clip). A 1-D ``(frames,)`` array
is one channel. Note that soundfile reads ``(frames, channels)``: transpose once after
reading (``data.T``), not in every kernel.
"""

from __future__ import annotations

import numpy as np

from fieldkit.errors import ValidationError

__all__ = ["as_channels"]


def as_channels(samples: np.ndarray, what: str = "samples") -> np.ndarray:
    """View ``(frames,)`` or ``(channels, frames)`` samples as 2-D ``(channels, frames)``.

    Never copies; raises ValidationError for any other number of dimensions.
    """
    x = np.asarray(samples)
    if x.ndim == 1:
        return x[np.newaxis, :]
    if x.ndim == 2:
        return x
    raise ValidationError(
        f"{what} must be shaped (frames,) or (channels, frames); got shape {x.shape}."
    )
