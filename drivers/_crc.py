"""Checksums used by sensor chips on the wire."""

from __future__ import annotations


def sensirion_crc8(data: bytes | list[int]) -> int:
    """CRC-8 of Sensirion's SHT3x/SHT4x: polynomial 0x31 (x^8 + x^5 + x^4 + 1), start 0xFF,
    no reflection, no final XOR.  ``sensirion_crc8(b"\\xbe\\xef") == 0x92``."""
    return _crc8_poly_0x31(data, 0xFF)


def maxim_crc8(data: bytes | list[int]) -> int:
    """CRC-8 of Maxim/Dallas 1-Wire devices (DS18B20 scratchpad, ROM codes): polynomial
    0x31 sent least significant bit first, start 0.  A scratchpad with its CRC byte gives 0."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 0x01
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def htu21d_crc8(data: bytes | list[int]) -> int:
    """CRC-8 of the HTU21D, SHT2x and Si7021: polynomial 0x31 like Sensirion's newer chips, but
    starting from 0.  ``htu21d_crc8(b"\\x68\\x3a") == 0x7C`` (HTU21D datasheet, CRC examples)."""
    return _crc8_poly_0x31(data, 0x00)


def _crc8_poly_0x31(data: bytes | list[int], start: int) -> int:
    """CRC-8 with polynomial 0x31, most significant bit first, no final XOR, from *start*."""
    crc = start
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc
