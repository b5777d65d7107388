"""Bosch BME680/BME688: calibration block, the datasheet's floating-point compensation and the heater.

The datasheet (BME680, BST-BME680-DS001) gives temperature, pressure and
humidity compensation as integer code in sections 3.3.1 to 3.3.3; Bosch's
BME68x Sensor API publishes the same compensation in floating point, which
is what is used here (Python floats are doubles, so nothing is lost).  The
heater set-point follows section 3.3.5 and the gas resistance section
3.4.1, where the two chips differ: the BME680 ("low" gas variant) corrects
each of its 16 ranges with the chip's range-switching error and the table
of per-range constants; the BME688 ("high" variant) needs neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._bits import signed

#: BME680 datasheet section 3.4.1, the range table: per gas range, the correction factor
#: ("const_array1") and the range's full-scale resistance in ohms ("const_array2").
LOW_GAS_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.99, 1.0, 0.992, 1.0, 1.0, 0.998, 0.995, 1.0, 0.99, 1.0, 1.0)
LOW_GAS_RANGE_OHMS = (
    8000000.0, 4000000.0, 2000000.0, 1000000.0, 499500.4995, 248262.1648, 125000.0, 63004.03226,
    31281.28128, 15625.0, 7812.5, 3906.25, 1953.125, 976.5625, 488.28125, 244.140625,
)


@dataclass(frozen=True)
class Calibration68x:
    """The trimming parameters (par_t1 .. par_g3, heater range and value, range-switching error)."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    p10: int
    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int
    h7: int
    g1: int
    g2: int
    g3: int
    res_heat_range: int
    res_heat_val: int
    range_switching_error: int

    @classmethod
    def parse(cls, block1: list[int], block2: list[int], block3: list[int]) -> "Calibration68x":
        """*block1*: 23 bytes from 0x8A; *block2*: 14 bytes from 0xE1; *block3*: 5 bytes from 0x00
        (BME680 datasheet sections 3.3.1 to 3.3.5 give each parameter's register)."""
        a = {0x8A + i: v for i, v in enumerate(block1)}
        a.update({0xE1 + i: v for i, v in enumerate(block2)})
        a.update({0x00 + i: v for i, v in enumerate(block3)})

        def u16(lsb: int) -> int:
            return a[lsb + 1] << 8 | a[lsb]

        return cls(
            t1=u16(0xE9), t2=signed(u16(0x8A), 16), t3=signed(a[0x8C], 8),
            p1=u16(0x8E), p2=signed(u16(0x90), 16), p3=signed(a[0x92], 8),
            p4=signed(u16(0x94), 16), p5=signed(u16(0x96), 16), p6=signed(a[0x99], 8), p7=signed(a[0x98], 8),
            p8=signed(u16(0x9C), 16), p9=signed(u16(0x9E), 16), p10=a[0xA0],
            h1=a[0xE3] << 4 | (a[0xE2] & 0x0F), h2=a[0xE1] << 4 | a[0xE2] >> 4,
            h3=signed(a[0xE4], 8), h4=signed(a[0xE5], 8), h5=signed(a[0xE6], 8), h6=a[0xE7], h7=signed(a[0xE8], 8),
            g1=signed(a[0xED], 8), g2=signed(u16(0xEB), 16), g3=signed(a[0xEE], 8),
            res_heat_range=(a[0x02] >> 4) & 0x03, res_heat_val=signed(a[0x00], 8),
            range_switching_error=signed(a[0x04] & 0xF0, 8) >> 4,
        )

    def t_fine(self, adc_t: int) -> float:
        """Section 3.3.1 (float form of the BME68x Sensor API)."""
        var1 = (adc_t / 16384.0 - self.t1 / 1024.0) * self.t2
        var2 = (adc_t / 131072.0 - self.t1 / 8192.0) ** 2 * (self.t3 * 16.0)
        return var1 + var2

    @staticmethod
    def temperature(t_fine: float) -> float:
        """°C."""
        return t_fine / 5120.0

    def pressure(self, adc_p: int, t_fine: float) -> float:
        """Pa, section 3.3.2."""
        var1 = t_fine / 2.0 - 64000.0
        var2 = var1 * var1 * (self.p6 / 131072.0)
        var2 = var2 + var1 * self.p5 * 2.0
        var2 = var2 / 4.0 + self.p4 * 65536.0
        var1 = (self.p3 * var1 * var1 / 16384.0 + self.p2 * var1) / 524288.0
        var1 = (1.0 + var1 / 32768.0) * self.p1
        if var1 == 0.0:
            return 0.0
        p = 1048576.0 - adc_p
        p = (p - var2 / 4096.0) * 6250.0 / var1
        var1 = self.p9 * p * p / 2147483648.0
        var2 = p * (self.p8 / 32768.0)
        var3 = (p / 256.0) ** 3 * (self.p10 / 131072.0)
        return p + (var1 + var2 + var3 + self.p7 * 128.0) / 16.0

    def humidity(self, adc_h: int, temperature: float) -> float:
        """%RH, section 3.3.3, limited to 0..100 as the datasheet's code does."""
        var1 = adc_h - (self.h1 * 16.0 + self.h3 / 2.0 * temperature)
        var2 = var1 * (
            self.h2 / 262144.0 * (1.0 + self.h4 / 16384.0 * temperature + self.h5 / 1048576.0 * temperature**2)
        )
        var3 = self.h6 / 16384.0
        var4 = self.h7 / 2097152.0
        return min(max(var2 + (var3 + var4 * temperature) * var2 * var2, 0.0), 100.0)

    def gas_low(self, adc: int, gas_range: int) -> float:
        """Ω, BME680 (section 3.4.1): the range's full scale corrected by the range-switching error."""
        var1 = (1340.0 + 5.0 * self.range_switching_error) * LOW_GAS_FACTOR[gas_range]
        return var1 * LOW_GAS_RANGE_OHMS[gas_range] / (adc - 512.0 + var1)

    @staticmethod
    def gas_high(adc: int, gas_range: int) -> float:
        """Ω, BME688 (BME688 datasheet, gas resistance readout; BME68x Sensor API, high variant)."""
        var1 = 262144 >> gas_range
        var2 = 4096 + (adc - 512) * 3
        return 1000000.0 * var1 / var2

    def res_heat(self, target: float, ambient: float) -> int:
        """The res_heat_x register value for a heater target and the ambient temperature (°C), section 3.3.5."""
        var1 = self.g1 / 16.0 + 49.0
        var2 = self.g2 / 32768.0 * 0.0005 + 0.00235
        var3 = self.g3 / 1024.0
        var4 = var1 * (1.0 + var2 * target)
        var5 = var4 + var3 * ambient
        value = 3.4 * (var5 * (4.0 / (4.0 + self.res_heat_range)) * (1.0 / (1.0 + self.res_heat_val * 0.002)) - 25)
        return min(max(int(value), 0), 255)


def gas_wait(milliseconds: int) -> int:
    """The gas_wait_x byte for a heating time: 6 bits of time times a factor 1, 4, 16 or 64 in
    bits 7:6 (section 5.3.3.3); 0xFF (4032 ms) is the longest."""
    if milliseconds >= 0xFC0:
        return 0xFF
    factor = 0
    while milliseconds > 0x3F:
        milliseconds //= 4
        factor += 1
    return factor << 6 | milliseconds


def gas_wait_ms(register: int) -> int:
    """The heating time a gas_wait_x byte stands for."""
    return (register & 0x3F) * (1 << 2 * (register >> 6))
