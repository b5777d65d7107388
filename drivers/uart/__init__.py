"""Sensors on a serial port (UART), read through pyserial.

The Pi's UART is on GPIO14 = TXD (pin 8) and GPIO15 = RXD (pin 10): the
sensor's TX goes to the Pi's RXD and its RX to the Pi's TXD.  On a Pi 1 to
4 that UART is ``/dev/serial0``; on a Pi 5 ``/dev/serial0`` is the 3-pin
debug header between the HDMI sockets and the GPIO14/15 UART is
``/dev/ttyAMA0``.  A USB serial adapter is ``/dev/ttyUSB0``.

``_port`` opens the port and turns the kernel's errors into advice;
``_stream`` finds framed messages in a byte stream and reads a streaming
sensor in a background thread.  Every other module here is one device.
"""
