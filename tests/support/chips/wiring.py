"""What the outside world wires to a port expander's input pins, for the expander stand-ins."""

from __future__ import annotations


class WiredPins:
    """Switches and outputs on the pins, kept in ``driven``: pin -> the level held from outside.

    A pin missing from ``driven`` is left to the chip (its pull-up, or floating).
    The chip sets ``self.driven = {}`` itself.
    """

    driven: dict[int, int]

    def switch(self, pin: int, closed: bool) -> None:
        """A switch to GND on *pin*: closed holds it at 0, open lets it go."""
        if closed:
            self.driven[pin] = 0
        else:
            self.driven.pop(pin, None)

    def drive(self, pin: int, level: int) -> None:
        """A device with its own output holds *pin* at *level*."""
        self.driven[pin] = level
