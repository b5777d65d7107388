"""Raw register values as the numbers they stand for."""

from __future__ import annotations


def signed(value: int, bits: int) -> int:
    """The two's-complement value of the low *bits* bits of *value* (sign extension).

    ``signed(0xFF, 8) == -1``, ``signed(0x7FFF, 16) == 32767``, ``signed(0x800, 12) == -2048``.
    """
    value &= (1 << bits) - 1
    return value - (1 << bits) if value & 1 << (bits - 1) else value
