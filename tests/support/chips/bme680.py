"""Bosch BME680 / BME688 as the BME680 datasheet (BST-BME680-DS001) describes it, in forced mode.

Chip id 0x61 at 0xD0, variant at 0xF0 (0x00 BME680, 0x01 BME688), the
three calibration blocks at 0x8A, 0xE1 and 0x00 (section 3.3), soft reset
0xB6 at 0xE0.  Writing mode 01 to ctrl_meas (0x74) runs one measurement:
temperature, pressure and humidity, then, when ctrl_gas_1 (0x71) selects
the chip's own gas circuit (run_gas_l for the BME680, run_gas_h for the
BME688), the heater phase of gas_wait_0.  The heater reaches its target
only with a heating time of 20 ms or more (section 3.3.5: "approximately
20–30 ms are necessary") and a res_heat_0 set; heat_stab says so.  The
results land in field 0 (0x1D..0x2D) with new_data set; the BME680's gas
result is at 0x2A/0x2B, the BME688's at 0x2C/0x2D.
"""

from __future__ import annotations

import struct
import time

from tests.support.smbus_fake import RegisterChip

#: The trimming values read from a real BME680 (published with the wrclark/bme680 driver's README);
#: the heater values are those of the BME68x Sensor API's reference example.
REAL_CALIBRATION = dict(
    t1=26203, t2=26519, t3=3, p1=35008, p2=-10284, p3=88, p4=9692, p5=-202, p6=30, p7=24, p8=-516,
    p9=-3469, p10=30, h1=794, h2=1007, h3=0, h4=45, h5=20, h6=120, h7=-100, g1=0, g2=-5686, g3=18,
    res_heat_range=1, res_heat_val=39, range_switching_error=0,
)


def _u8(value: int) -> int:
    return value & 0xFF


class BME680Chip(RegisterChip):
    def __init__(self, address=0x76, clock=time, variant=0x00, calibration=None, adc_t=500000, adc_p=350000,
                 adc_h=25000, gas_adc=1023, gas_range=13, chip_id=0x61):
        super().__init__(address)
        self.clock = clock
        self.chip_id, self.variant = chip_id, variant
        self.calibration = {**REAL_CALIBRATION, **(calibration or {})}
        self.adc_t, self.adc_p, self.adc_h = adc_t, adc_p, adc_h
        self.gas_adc, self.gas_range = gas_adc, gas_range
        self.measurements = 0
        self._done_at = None
        self._power_on()

    def _power_on(self):
        r = self.registers
        r[:] = bytes(len(r))
        c = self.calibration
        r[0xD0], r[0xF0] = self.chip_id, self.variant
        r[0x8A:0x8C] = struct.pack("<h", c["t2"])
        r[0x8C] = _u8(c["t3"])
        r[0x8E:0x92] = struct.pack("<Hh", c["p1"], c["p2"])
        r[0x92] = _u8(c["p3"])
        r[0x94:0x98] = struct.pack("<hh", c["p4"], c["p5"])
        r[0x98], r[0x99] = _u8(c["p7"]), _u8(c["p6"])
        r[0x9C:0xA0] = struct.pack("<hh", c["p8"], c["p9"])
        r[0xA0] = c["p10"]
        r[0xE1] = c["h2"] >> 4
        r[0xE2] = (c["h2"] & 0x0F) << 4 | (c["h1"] & 0x0F)
        r[0xE3] = c["h1"] >> 4
        r[0xE4:0xE9] = bytes(_u8(c[k]) for k in ("h3", "h4", "h5", "h6", "h7"))
        r[0xE9:0xEB] = struct.pack("<H", c["t1"])
        r[0xEB:0xED] = struct.pack("<h", c["g2"])
        r[0xED], r[0xEE] = _u8(c["g1"]), _u8(c["g3"])
        r[0x00] = _u8(c["res_heat_val"])
        r[0x02] = (c["res_heat_range"] & 0x03) << 4
        r[0x04] = _u8(c["range_switching_error"] << 4)
        r[0x1F:0x25] = bytes([0x80, 0, 0, 0x80, 0, 0])  # "skipped" until a measurement has run
        self._done_at = None

    def brown_out(self):
        self._power_on()

    def on_write(self, register, value):
        if register == 0xE0:
            if value == 0xB6:
                self._power_on()
            return
        if register in (0xD0, 0xF0):
            return
        self.registers[register] = value
        if register == 0x74 and value & 0x03 == 0b01:
            self.registers[0x1D] = 0x20  # measuring, no new data
            self._done_at = self.clock.monotonic() + 0.010 + self._heating_ms() / 1000.0

    def _gas_enabled(self) -> bool:
        wanted = 0x20 if self.variant == 0x01 else 0x10
        return self.registers[0x71] & 0x30 == wanted and not self.registers[0x70] & 0x08

    def _heating_ms(self) -> int:
        if not self._gas_enabled():
            return 0
        wait = self.registers[0x64]
        return (wait & 0x3F) * (1 << 2 * (wait >> 6))

    def _finish(self):
        if self._done_at is None or self.clock.monotonic() < self._done_at:
            return
        self._done_at = None
        self.measurements += 1
        r = self.registers
        p, t, h = self.adc_p, self.adc_t, self.adc_h
        r[0x1F:0x22] = bytes([p >> 12, (p >> 4) & 0xFF, (p & 0x0F) << 4])
        r[0x22:0x25] = bytes([t >> 12, (t >> 4) & 0xFF, (t & 0x0F) << 4])
        r[0x25:0x27] = bytes([h >> 8, h & 0xFF])
        gas_register = 0x2C if self.variant == 0x01 else 0x2A
        r[0x2A:0x2E] = bytes(4)
        flags = 0
        if self._gas_enabled():
            flags |= 0x20
            if self._heating_ms() >= 20 and r[0x5A]:
                flags |= 0x10
        r[gas_register] = self.gas_adc >> 2
        r[gas_register + 1] = (self.gas_adc & 0x03) << 6 | flags | self.gas_range
        r[0x1D] = 0x80
        r[0x74] &= ~0x03  # back to sleep

    def on_read(self, register):
        self._finish()
        return self.registers[register]
