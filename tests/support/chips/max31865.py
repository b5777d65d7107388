"""MAX31865 as the Maxim datasheet describes it: registers, one-shot conversions, fault status.

Registers (Table 1, "Register Memory Map"): 00h configuration, 01h-02h RTD
data (15 bits, D0 of 02h the fault bit), 03h-04h high fault threshold
(power-on FFFFh), 05h-06h low fault threshold (0000h), 07h fault status.
An address byte with A7 = 1 writes, A7 = 0 reads; the address increments
after each data byte.  Over- and undervoltage (status D2) is watched all
the time; the cable faults (D5..D3) are only tested by a fault-detection
cycle (configuration D3:D2 = 01 with VBIAS on), after which D3:D2 read 00.  Writing the 1-shot bit with VBIAS on starts one
conversion that is ready after the conversion time; the 1-shot and
fault-clear bits read back as 0.  The code is R_RTD / R_REF x 2^15; a
result above the high or below the low threshold sets the fault bit and
the status bit, which stay latched until fault clear is written.
"""

from __future__ import annotations

import time

from tests.support.spidev_fake import SpiChip

VBIAS, ONE_SHOT, FAULT_CLEAR, FILTER_50HZ = 0x80, 0x20, 0x02, 0x01
WRITABLE = {0x00, 0x03, 0x04, 0x05, 0x06}


class MAX31865Chip(SpiChip):
    modes = (1, 3)

    def __init__(self, resistance: float = 100.0, reference: float = 430.0):
        super().__init__()
        self.resistance = resistance
        self.reference = reference
        #: When set, the conversion result (15-bit ADC code) regardless of the resistance.
        self.adc_code: int | None = None
        self.registers = [0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00]
        #: An over- or undervoltage on an input (status D2, latched by the next conversion).
        self.overvoltage = False
        #: Cable faults (status D5..D3) that a fault-detection cycle finds.
        self.cable_faults = 0
        self.detection_cycles = 0
        self.conversions = 0
        self.bias_on_since: float | None = None
        self._pending: tuple[float, int] | None = None
        self.stale_reads = 0

    def _conversion_time(self) -> float:
        return 0.0625 if self.registers[0] & FILTER_50HZ else 0.052

    def _finish_conversion(self) -> None:
        if self._pending and time.monotonic() >= self._pending[0]:
            code = self._pending[1]
            self._pending = None
            high = (self.registers[3] << 8 | self.registers[4]) >> 1
            low = (self.registers[5] << 8 | self.registers[6]) >> 1
            status = self.registers[7] | (0x04 if self.overvoltage else 0)
            if code >= high:
                status |= 0x80
            if code < low:
                status |= 0x40
            self.registers[7] = status
            word = code << 1 | (1 if status else 0)
            self.registers[1], self.registers[2] = word >> 8, word & 0xFF
            self.conversions += 1

    def _write_config(self, value: int) -> None:
        if value & FAULT_CLEAR:
            self.registers[7] = 0
            self.registers[2] &= 0xFE
        if value & VBIAS and not self.registers[0] & VBIAS:
            self.bias_on_since = time.monotonic()
        if not value & VBIAS:
            self.bias_on_since = None
        if value & 0x0C == 0x04 and value & VBIAS:
            self.registers[7] |= self.cable_faults
            self.detection_cycles += 1
            value &= ~0x0C
        if value & ONE_SHOT:
            if self.bias_on_since is None:
                code = 0  # no bias current, no voltage across the RTD
            elif self.adc_code is not None:
                code = self.adc_code
            else:
                code = min(0x7FFF, round(self.resistance / self.reference * 32768))
            self._pending = (time.monotonic() + self._conversion_time(), code)
        self.registers[0] = value & ~(ONE_SHOT | FAULT_CLEAR) & 0xFF

    def exchange(self, data: list[int]) -> list[int]:
        self._finish_conversion()
        address = data[0]
        reply = [0xFF]
        register = address & 0x7F
        for byte in data[1:]:
            register %= 8
            if address & 0x80:
                if register == 0:
                    self._write_config(byte)
                elif register in WRITABLE:
                    self.registers[register] = byte
                reply.append(0xFF)
            else:
                if register in (1, 2) and self._pending:
                    self.stale_reads += 1
                reply.append(self.registers[register])
            register += 1
        return reply
