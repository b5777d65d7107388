"""MAX31850/MAX31851 thermocouple interfaces on the 1-Wire bus, through the kernel's w1 driver."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import Option, ValueRejected, register
from ._scratchpad import MAX31850 as THERMOCOUPLE
from ._scratchpad import MAX31850_COLD_JUNCTION
from .ds18b20 import DS18B20


@register
class MAX31850(DS18B20):
    """A MAX31850K (or J, N, T, S, R, E) thermocouple board: the thermocouple's temperature and the board's.

    Wire VDD to 3.3 V (pin 1), GND to ground and DQ to GPIO4 (pin 7), with
    a 4.7 kΩ pull-up from DQ to 3.3 V, and enable the bus with
    ``dtoverlay=w1-gpio`` as for a DS18B20.  Screw the thermocouple's two
    wires into the board (for type K: yellow +, red -).  The board appears
    as ``3b-...`` in /sys/bus/w1/devices; several boards can share the bus,
    each sensor naming its own ``device_id``.

    Reports ``temperature`` (the hot end of the thermocouple, 0.25 °C steps)
    and ``cold_junction`` (the board, 0.0625 °C steps).  An open thermocouple
    or one shorted to GND or VDD is refused, naming the fault.
    """

    name = "max31850"
    summary = "MAX31850 1-Wire thermocouple interface: thermocouple and board temperature"
    options = {
        **DS18B20.options,
        "device_id": Option(str, "", "the board's id, e.g. 3b-0000001a2b3c (may be left out with one on the bus)"),
    }
    provides = (
        Quantity("temperature", "°C", "temperature at the thermocouple's hot end"),
        Quantity("cold_junction", "°C", "temperature of the board (the thermocouple's cold junction)"),
    )
    families = ("3b",)
    example_id = "3b-0000001a2b3c"
    device_kind = "MAX31850"

    def min_interval(self) -> float:
        return 0.1  # one conversion, 100 ms at most

    def values(self, pad: bytes) -> dict[str, float]:
        if not pad[4] & 0x80:
            raise ValueRejected(
                f"{self.where()}: the configuration byte {pad[4]:#04x} is a DS1825's, not a MAX31850's "
                "(upper four bits set): use driver = \"ds18b20\" for it"
            )
        return {
            "temperature": self.checked(THERMOCOUPLE, THERMOCOUPLE.celsius, pad),
            "cold_junction": self.checked(MAX31850_COLD_JUNCTION, MAX31850_COLD_JUNCTION.celsius, pad),
        }
