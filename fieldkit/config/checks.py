"""Value checks shared by the validated models (processing parameters, the store layout)."""

from __future__ import annotations

from typing import Any

__all__ = ["is_int"]


def is_int(value: Any) -> bool:
    """True for an ``int`` that is not a ``bool``.

    ``bool`` is a subclass of ``int`` in Python, so ``isinstance(True, int)`` holds; a setting
    written ``n_fft: true`` must still be refused as "not an integer".
    """
    return isinstance(value, int) and not isinstance(value, bool)
