"""Register-level emulators of the I2C chips pibridge supports, as their datasheets describe them.

Each emulator keeps the chip's own timing (a measurement is not ready
until its conversion time has passed) and its own checks (a Sensirion chip
does not acknowledge a read while it is still measuring, or a command it
does not know).  Values go in as the chip's raw ADC counts, so tests can use
the raw numbers printed in the datasheets.
"""

from __future__ import annotations

import errno
import struct
import time

from tests.support.smbus_fake import Chip, CommandChip, RegisterChip, io_error


def crc8_sensirion(data: bytes) -> int:
    """The datasheets' checksum (SHT3x section 4.12): poly 0x31, init 0xFF, no reflection."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc << 1) ^ 0x131 if crc & 0x80 else crc << 1
    return crc & 0xFF


def _sensirion_words(*words: int, corrupt: bool = False) -> bytes:
    out = bytearray()
    for word in words:
        pair = bytes([word >> 8, word & 0xFF])
        crc = crc8_sensirion(pair)
        out += pair + bytes([crc ^ 0x01 if corrupt else crc])
    return bytes(out)


# --- Bosch BME280 / BMP280 ---------------------------------------------------------------------

#: BMP280 datasheet section 3.12, table "Compensation computation example" (also valid for BME280).
DATASHEET_TP = dict(T1=27504, T2=26435, T3=-1000, P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7,
                    P7=15500, P8=-14600, P9=6000)
DATASHEET_ADC_T, DATASHEET_ADC_P = 519888, 415148
#: Humidity trimming values as found on a typical BME280 (the datasheet gives no example).
TYPICAL_H = dict(H1=75, H2=362, H3=0, H4=313, H5=50, H6=30)


class BoschChip(RegisterChip):
    """BME280 (chip id 0x60) or BMP280 (0x58): calibration block, forced mode, status bits."""

    def __init__(self, address=0x76, chip_id=0x60, calibration=None, adc_t=DATASHEET_ADC_T,
                 adc_p=DATASHEET_ADC_P, adc_h=30000, conversion_s=0.004):
        super().__init__(address)
        self.chip_id = chip_id
        self.humidity = chip_id == 0x60
        self.calibration = {**DATASHEET_TP, **TYPICAL_H, **(calibration or {})}
        self.adc_t, self.adc_p, self.adc_h = adc_t, adc_p, adc_h
        self.conversion_s = conversion_s
        self.measurements = 0
        self._done_at = None
        self._nvm_until = 0.0
        self._latched_h = 0
        self._power_on()

    def _power_on(self):
        c = self.calibration
        r = self.registers
        r[:] = bytes(len(r))
        r[0xD0] = self.chip_id
        r[0x88:0xA0] = struct.pack("<HhhHhhhhhhhh", c["T1"], c["T2"], c["T3"], c["P1"], c["P2"], c["P3"],
                                   c["P4"], c["P5"], c["P6"], c["P7"], c["P8"], c["P9"])
        if self.humidity:
            r[0xA1] = c["H1"]
            r[0xE1:0xE3] = struct.pack("<h", c["H2"])
            r[0xE3] = c["H3"]
            r[0xE4] = (c["H4"] >> 4) & 0xFF
            r[0xE5] = (c["H4"] & 0x0F) | ((c["H5"] & 0x0F) << 4)
            r[0xE6] = (c["H5"] >> 4) & 0xFF
            r[0xE7] = c["H6"] & 0xFF
        # Data registers read 0x80000 / 0x8000 until a measurement has run.
        r[0xF7:0xFF] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
        self._done_at = None

    def brown_out(self):
        """The supply dipped: registers back to their reset values (ctrl_hum = 0)."""
        self._power_on()

    def on_write(self, register, value):
        if register == 0xE0:
            if value == 0xB6:
                self._power_on()
                self._nvm_until = time.monotonic() + 0.002
            return
        if register == 0xF2 and not self.humidity:
            return
        self.registers[register] = value
        if register == 0xF4 and value & 0x03 in (0b01, 0b10):
            # ctrl_hum is latched only now (datasheet 5.4.3).
            self._latched_h = self.registers[0xF2] & 0x07
            self._done_at = time.monotonic() + self.conversion_s

    def _finish(self):
        if self._done_at is None or time.monotonic() < self._done_at:
            return
        self._done_at = None
        self.measurements += 1
        ctrl = self.registers[0xF4]
        osrs_t, osrs_p = ctrl >> 5, (ctrl >> 2) & 0x07
        r = self.registers
        t = self.adc_t if osrs_t else 0x80000
        p = self.adc_p if osrs_p else 0x80000
        r[0xF7:0xFA] = bytes([p >> 12, (p >> 4) & 0xFF, (p & 0x0F) << 4])
        r[0xFA:0xFD] = bytes([t >> 12, (t >> 4) & 0xFF, (t & 0x0F) << 4])
        if self.humidity:
            h = self.adc_h if self._latched_h else 0x8000
            r[0xFD:0xFF] = bytes([h >> 8, h & 0xFF])
        r[0xF4] = ctrl & ~0x03  # back to sleep mode after a forced measurement

    def on_read(self, register):
        self._finish()
        if register == 0xF3:
            measuring = 0x08 if self._done_at is not None else 0
            updating = 0x01 if time.monotonic() < self._nvm_until else 0
            return measuring | updating
        return self.registers[register]


# --- Sensirion SHT3x / SHT4x -------------------------------------------------------------------


class SensirionChip(CommandChip):
    """Common behaviour: NACK on reads while measuring or with nothing to send; NACK unknown commands."""

    def __init__(self, address):
        super().__init__(address)
        self._ready_at = 0.0
        self.corrupt_crc = False

    def prepare(self, words, delay):
        self.response = _sensirion_words(*words, corrupt=self.corrupt_crc)
        self._ready_at = time.monotonic() + delay

    def on_read(self, length):
        if not self.response or time.monotonic() < self._ready_at:
            raise io_error(errno.EREMOTEIO)
        data, self.response = self.response, b""
        return data


class SHT3xChip(SensirionChip):
    """SHT30/31/35: two-byte commands, single shot without clock stretching."""

    #: command -> longest measurement time
    SINGLE_SHOT = {0x2400: 0.0155, 0x240B: 0.0065, 0x2416: 0.0045}

    def __init__(self, address=0x44, t_raw=0x6666, rh_raw=0x8000):
        super().__init__(address)
        self.t_raw, self.rh_raw = t_raw, rh_raw
        self.status = 0x8010  # alert pending and reset detected, as after power-up

    def on_command(self, data):
        if len(data) != 2:
            raise io_error(errno.EREMOTEIO)
        command = data[0] << 8 | data[1]
        if command in self.SINGLE_SHOT:
            self.prepare([self.t_raw, self.rh_raw], self.SINGLE_SHOT[command])
        elif command == 0x30A2:  # soft reset
            self.response = b""
            self.status = 0x8010
        elif command == 0xF32D:  # read status
            self.prepare([self.status], 0.0)
        elif command == 0x3041:  # clear status
            self.status &= ~0x0010
        else:
            raise io_error(errno.EREMOTEIO)


class SHT4xChip(SensirionChip):
    """SHT40/41/45: one-byte commands."""

    MEASURE = {0xFD: 0.0083, 0xF6: 0.0045, 0xE0: 0.0016}

    def __init__(self, address=0x44, t_raw=0x6666, rh_raw=0x6666, serial=0x0F5A3C11):
        super().__init__(address)
        self.t_raw, self.rh_raw, self.serial = t_raw, rh_raw, serial

    def on_command(self, data):
        if len(data) != 1:
            raise io_error(errno.EREMOTEIO)
        command = data[0]
        if command in self.MEASURE:
            self.prepare([self.t_raw, self.rh_raw], self.MEASURE[command])
        elif command == 0x89:
            self.prepare([self.serial >> 16, self.serial & 0xFFFF], 0.0)
        elif command == 0x94:
            self.response = b""
        else:
            raise io_error(errno.EREMOTEIO)


# --- ROHM BH1750 -------------------------------------------------------------------------------


class BH1750Chip(CommandChip):
    """BH1750FVI: opcodes from the datasheet's instruction set table; one-time modes power down after."""

    #: one-time opcode -> (longest measurement time, count multiplier, resolution mask)
    ONE_TIME = {0x20: (0.180, 1, 0xFFFF), 0x21: (0.180, 2, 0xFFFF), 0x23: (0.024, 1, 0xFFFC)}

    def __init__(self, address=0x23, counts=0x8390):
        super().__init__(address)
        self.counts = counts  # H-resolution count at the default MTreg (69)
        self.powered = False
        self.data = 0
        self._pending = None

    def on_command(self, data):
        if len(data) != 1:
            raise io_error(errno.EREMOTEIO)
        op = data[0]
        if op == 0x00:
            self.powered = False
        elif op == 0x01:
            self.powered = True
        elif op == 0x07:
            if self.powered:
                self.data = 0
        elif op in self.ONE_TIME:
            self.powered = True
            self._pending = (time.monotonic() + self.ONE_TIME[op][0], op)
        else:
            raise io_error(errno.EREMOTEIO)

    def on_read(self, length):
        if self._pending and time.monotonic() >= self._pending[0]:
            _, multiplier, mask = self.ONE_TIME[self._pending[1]]
            self.data = min(self.counts * multiplier, 0xFFFF) & mask
            self._pending = None
            self.powered = False
        return bytes([self.data >> 8, self.data & 0xFF])


# --- 16-bit pointer-register chips: TI ADS1115 and INA219 --------------------------------------


class WordRegisterChip(Chip):
    """A pointer byte selects a 16-bit register sent MSB first; no auto-increment."""

    def __init__(self, address):
        super().__init__(address)
        self.pointer = 0
        self.written: list[tuple[int, int]] = []

    def write(self, data):
        if not data:
            return
        self.pointer = data[0]
        if len(data) == 3:
            value = data[1] << 8 | data[2]
            self.written.append((self.pointer, value))
            self.write_register(self.pointer, value)
        elif len(data) != 1:
            raise io_error(errno.EREMOTEIO)

    def read(self, length):
        value = self.read_register(self.pointer)
        return bytes([value >> 8, value & 0xFF] * ((length + 1) // 2))[:length]


class ADS1115Chip(WordRegisterChip):
    """ADS1115: conversion 0x00, config 0x01, reset config 0x8583."""

    FSR = {0: 6.144, 1: 4.096, 2: 2.048, 3: 1.024, 4: 0.512, 5: 0.256, 6: 0.256, 7: 0.256}
    SPS = {0: 8, 1: 16, 2: 32, 3: 64, 4: 128, 5: 250, 6: 475, 7: 860}
    MUX = {0: (0, 1), 1: (0, 3), 2: (1, 3), 3: (2, 3), 4: (0, None), 5: (1, None), 6: (2, None), 7: (3, None)}

    def __init__(self, address=0x48, inputs=(0.0, 0.0, 0.0, 0.0)):
        super().__init__(address)
        self.inputs = list(inputs)
        self.config = 0x8583
        self.conversion = 0
        self._done_at = None
        self.conversions = 0

    def code(self, config):
        positive, negative = self.MUX[(config >> 12) & 0x07]
        volts = self.inputs[positive] - (self.inputs[negative] if negative is not None else 0.0)
        fsr = self.FSR[(config >> 9) & 0x07]
        return max(-32768, min(32767, round(volts / fsr * 32768)))

    def write_register(self, pointer, value):
        if pointer != 0x01:
            return
        self.config = value & 0x7FFF
        if value & 0x8000 and value & 0x0100:  # OS = 1 in single-shot mode: start one conversion
            self._done_at = time.monotonic() + 1.0 / self.SPS[(value >> 5) & 0x07]

    def read_register(self, pointer):
        if self._done_at is not None and time.monotonic() >= self._done_at:
            self.conversion = self.code(self.config) & 0xFFFF
            self.conversions += 1
            self._done_at = None
        if pointer == 0x00:
            return self.conversion
        if pointer == 0x01:
            return self.config | (0 if self._done_at is not None else 0x8000)
        return 0


class INA219Chip(WordRegisterChip):
    """INA219: config 0x00, shunt 0x01, bus 0x02, power 0x03, current 0x04, cal 0x05.

    Current and power come from the shunt and bus registers and the calibration
    register exactly as section 8.5.1 describes (Current = Shunt x Cal / 4096,
    Power = Current x Bus / 5000); without calibration both read 0.
    """

    def __init__(self, address=0x40, shunt_raw=0, bus_raw=0):
        super().__init__(address)
        self.shunt_raw, self.bus_raw = shunt_raw, bus_raw
        self.overflow = False
        self._reset()

    def _reset(self):
        self.config = 0x399F
        self.calibration = 0

    def write_register(self, pointer, value):
        if pointer == 0x00:
            if value & 0x8000:
                self._reset()
            else:
                self.config = value
        elif pointer == 0x05:
            self.calibration = value & 0xFFFE  # bit 0 is not used

    def current(self):
        current = int(self.shunt_raw * self.calibration / 4096)
        return max(-32768, min(32767, current))

    def read_register(self, pointer):
        if pointer == 0x00:
            return self.config
        if pointer == 0x01:
            return self.shunt_raw & 0xFFFF
        if pointer == 0x02:
            return (self.bus_raw << 3) | 0x02 | (1 if self.overflow else 0)
        if pointer == 0x03:
            return int(abs(self.current()) * self.bus_raw / 5000) & 0xFFFF
        if pointer == 0x04:
            return self.current() & 0xFFFF
        if pointer == 0x05:
            return self.calibration
        raise io_error(errno.EREMOTEIO)
