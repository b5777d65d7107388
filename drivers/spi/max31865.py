"""Maxim MAX31865: a platinum RTD's (PT100, PT1000) resistance and temperature over SPI."""

from __future__ import annotations

import math
import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._bus import SPIDriver, spi_options

REG_CONFIG, REG_RTD, REG_HIGH_THRESHOLD, REG_LOW_THRESHOLD, REG_FAULT_STATUS = 0x00, 0x01, 0x03, 0x05, 0x07
WRITE = 0x80
#: Configuration register bits (datasheet, "Configuration Register (00h)")
VBIAS, AUTO, ONE_SHOT, THREE_WIRE, FAULT_CLEAR, FILTER_50HZ = 0x80, 0x40, 0x20, 0x10, 0x02, 0x01
#: Fault detection cycle control D3:D2: 01 starts the automatic cycle, which reads 00 again when done
DETECTION_MASK, AUTOMATIC_DETECTION = 0x0C, 0x04
#: The automatic cycle takes about 550 µs (datasheet, "Fault Detection Cycle")
DETECTION_S = 0.001
#: Fault status bits (datasheet, "Fault Status Register (07h)") and what they mean
FAULTS = {
    0x80: "RTD resistance above the high threshold: the RTD or a lead is open",
    0x40: "RTD resistance below the low threshold: the RTD is shorted",
    0x20: "REFIN- > 0.85 x VBIAS: a FORCE- or REFIN- connection is open",
    0x10: "REFIN- < 0.85 x VBIAS with FORCE- open",
    0x08: "RTDIN- < 0.85 x VBIAS with FORCE- open",
    0x04: "over- or undervoltage on an input: check that nothing above 3.3 V reaches the RTD leads",
}
#: Callendar-Van Dusen coefficients of IEC 60751 platinum (alpha = 0.00385)
A, B, C = 3.9083e-3, -5.775e-7, -4.183e-12
#: The range the Callendar-Van Dusen equation is defined for.
LOWEST, HIGHEST = -200.0, 850.0
#: How far beyond that range a reading may be (ADC rounding) before it is refused; the fault
#: thresholds sit a little further out so a reading at the range's end is not a fault.
ROUNDING_MARGIN, THRESHOLD_MARGIN = 0.5, 5.0
#: VBIAS settling (10.5 time constants of the input filter) and one-shot conversion times (Electrical Characteristics)
BIAS_SETTLE_S = 0.01
CONVERSION_S = {50: 0.0625, 60: 0.052}


def resistance_at(celsius: float, r0: float) -> float:
    """R(T) = R0 (1 + A T + B T^2 + C (T - 100) T^3), the C term only below 0 °C."""
    t = celsius
    extra = C * (t - 100.0) * t**3 if t < 0 else 0.0
    return r0 * (1.0 + A * t + B * t * t + extra)


def temperature_of(resistance: float, r0: float) -> float:
    """The temperature of a platinum RTD of *r0* ohms at 0 °C that measures *resistance* ohms.

    At and above 0 °C the Callendar-Van Dusen equation is a quadratic, solved
    directly: T = (-A + sqrt(A^2 - 4 B (1 - R/R0))) / (2 B).  Below 0 °C it has
    the quartic C term; Newton's method on the full equation, started from
    the quadratic's root, converges to 1e-9 °C in a few steps (the function
    is smooth and monotonic over -200..0 °C).
    """
    ratio = resistance / r0
    discriminant = A * A - 4.0 * B * (1.0 - ratio)
    if discriminant < 0:
        raise ValueError(f"{resistance} Ω is beyond any platinum RTD's range")
    t = (-A + math.sqrt(discriminant)) / (2.0 * B)
    if ratio >= 1.0:
        return t
    for _ in range(50):
        error = resistance_at(t, r0) - resistance
        slope = r0 * (A + 2.0 * B * t + C * (4.0 * t**3 - 300.0 * t * t))
        step = error / slope
        t -= step
        if abs(step) < 1e-9:
            break
    return t


def describe_faults(status: int) -> list[str]:
    return [text for bit, text in FAULTS.items() if status & bit]


@register
class MAX31865(SPIDriver):
    """A MAX31865 board with a PT100 or PT1000 platinum RTD: temperature and resistance.

    Wire VIN to 3.3 V (pin 17), GND to ground, CLK to GPIO11 (pin 23), SDO to
    MISO GPIO9 (pin 21), SDI to MOSI GPIO10 (pin 19) and CS to CE0 GPIO8 (pin
    24, ``device = 0``) or CE1 GPIO7 (pin 26, ``device = 1``).  Connect the
    RTD's leads to the board's F+, RTD+, RTD-, F- terminals as its silkscreen
    shows for 2, 3 or 4 wires, close the board's 2/3/4-wire solder jumpers to
    match, and set ``wires``.

    ``rtd_nominal`` is the RTD's resistance at 0 °C (100 for a PT100, 1000 for
    a PT1000) and ``reference_resistor`` the board's reference resistor
    (430 Ω on most PT100 boards, 4300 Ω on PT1000 boards; printed on it).
    ``filter_hz`` is the mains frequency where you are (50 or 60 Hz): the
    chip's filter rejects its hum.

    Each read biases the RTD only for the one conversion it needs (about
    75 ms), so the sensing element does not warm itself up between reads.
    On a fault the chip's fault-detection cycle tests the leads, then the
    fault bits (open or shorted RTD, open leads, overvoltage) are read and
    cleared; the read fails naming them.
    """

    name = "max31865"
    summary = "Maxim MAX31865 PT100/PT1000 RTD temperature (SPI)"
    chip = "MAX31865"
    #: The chip samples on the second clock edge (CPHA = 1) and detects the clock polarity itself.
    modes = (1, 3)
    options = {
        **spi_options(1, 1_000_000),
        "rtd_nominal": Option(float, 100.0, "the RTD's resistance at 0 °C in ohms: 100 (PT100) or 1000 (PT1000)"),
        "reference_resistor": Option(float, 430.0, "the board's reference resistor in ohms (430 for PT100, 4300 for PT1000 boards)"),
        "wires": Option(int, 2, "how many wires the RTD has: 2, 3 or 4"),
        "filter_hz": Option(int, 50, "mains frequency to reject: 50 or 60 (Hz)"),
    }
    provides = (
        Quantity("temperature", "°C", "RTD temperature (Callendar-Van Dusen, IEC 60751)"),
        Quantity("resistance", "Ω", "RTD resistance"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        r0, rref = self.config["rtd_nominal"], self.config["reference_resistor"]
        if r0 <= 0:
            raise OptionError("rtd_nominal", f"sensor {sensor!r}: rtd_nominal must be positive (100 or 1000)")
        if rref <= r0:
            raise OptionError(
                "reference_resistor",
                f"sensor {sensor!r}: reference_resistor = {rref} Ω must be larger than rtd_nominal = {r0} Ω "
                "(about 4 x rtd_nominal is right: 430 for a PT100, 4300 for a PT1000)",
            )
        if self.config["wires"] not in (2, 3, 4):
            raise OptionError("wires", f"sensor {sensor!r}: wires must be 2, 3 or 4, not {self.config['wires']}")
        if self.config["filter_hz"] not in CONVERSION_S:
            raise OptionError("filter_hz", f"sensor {sensor!r}: filter_hz must be 50 or 60, not {self.config['filter_hz']}")
        self.base_config = (THREE_WIRE if self.config["wires"] == 3 else 0) | (
            FILTER_50HZ if self.config["filter_hz"] == 50 else 0
        )
        self.high_threshold = self.code_of(resistance_at(HIGHEST + THRESHOLD_MARGIN, r0))
        self.low_threshold = self.code_of(resistance_at(LOWEST - THRESHOLD_MARGIN, r0))

    def code_of(self, ohms: float) -> int:
        """The 15-bit ADC code of *ohms*: R / R_REF x 2^15 (datasheet Equation 2), clipped to the range."""
        return max(0, min(0x7FFF, round(ohms / self.config["reference_resistor"] * 32768)))

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return BIAS_SETTLE_S + CONVERSION_S[self.config["filter_hz"]]

    # Registers: a read sends the address (A7 = 0) and clocks out the bytes; a write sets A7.

    def read_registers(self, register: int, count: int) -> list[int]:
        return self.transfer([register] + [0] * count)[1:]

    def write_registers(self, register: int, *values: int) -> None:
        self.transfer([register | WRITE, *values])

    def setup(self) -> None:
        self.write_registers(REG_CONFIG, self.base_config | FAULT_CLEAR)
        written = self.base_config
        got = self.read_registers(REG_CONFIG, 1)[0]
        if got != written:
            raise DeviceNotFound(
                f"{self.where()}: wrote {written:#04x} to the configuration register but read back {got:#04x}: "
                f"no {self.chip} answers; {self.wiring_hint()}"
            )
        high, low = self.high_threshold << 1, self.low_threshold << 1
        self.write_registers(REG_HIGH_THRESHOLD, high >> 8, high & 0xFF, low >> 8, low & 0xFF)
        back = self.read_registers(REG_HIGH_THRESHOLD, 4)
        if back != [high >> 8, high & 0xFF, low >> 8, low & 0xFF]:
            raise DeviceNotFound(f"{self.where()}: the fault thresholds read back wrong ({bytes(back).hex()}): "
                                 f"the chip is not a {self.chip} or the wiring is bad; {self.wiring_hint()}")

    def convert(self) -> int:
        """One conversion with the bias on only meanwhile (datasheet, "1-Shot" and "VBIAS" bits)."""
        self.write_registers(REG_CONFIG, self.base_config | VBIAS)
        time.sleep(BIAS_SETTLE_S)
        self.write_registers(REG_CONFIG, self.base_config | VBIAS | ONE_SHOT)
        time.sleep(CONVERSION_S[self.config["filter_hz"]])
        msb, lsb = self.read_registers(REG_RTD, 2)
        self.write_registers(REG_CONFIG, self.base_config)
        if lsb & 0x01:
            status = self.diagnose()
            found = describe_faults(status) or [f"fault status {status:#04x}"]
            raise ReadFailed(f"{self.where()}: the chip reports " + "; ".join(found) + " (fault cleared)")
        return (msb << 8 | lsb) >> 1

    def diagnose(self) -> int:
        """After a fault: run the automatic fault-detection cycle, which tests the cable (status
        D5..D3), read the fault status register and clear it."""
        self.write_registers(REG_CONFIG, self.base_config | VBIAS | AUTOMATIC_DETECTION)
        deadline = time.monotonic() + 10 * DETECTION_S
        while self.read_registers(REG_CONFIG, 1)[0] & DETECTION_MASK and time.monotonic() < deadline:
            time.sleep(DETECTION_S)
        status = self.read_registers(REG_FAULT_STATUS, 1)[0]
        self.write_registers(REG_CONFIG, self.base_config | FAULT_CLEAR)
        return status

    def measure(self) -> dict[str, float]:
        code = self.convert()
        r0 = self.config["rtd_nominal"]
        ohms = code / 32768 * self.config["reference_resistor"]
        celsius = temperature_of(ohms, r0)
        if not LOWEST - ROUNDING_MARGIN <= celsius <= HIGHEST + ROUNDING_MARGIN:
            raise ValueRejected(
                f"{self.where()}: {ohms:.2f} Ω means {celsius:.1f} °C, outside a platinum RTD's range "
                f"({LOWEST:g} to {HIGHEST:g} °C): check rtd_nominal = {r0:g} and "
                f"reference_resistor = {self.config['reference_resistor']:g}"
            )
        return {"temperature": round(celsius, 2), "resistance": round(ohms, 3)}
