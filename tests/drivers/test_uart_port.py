"""The serial-port helpers: which port carries the kernel's console, and where /dev/serial0 points."""

from pibridge.drivers.uart import _port


def test_console_on_resolves_links_and_ignores_other_consoles(tmp_path):
    real = tmp_path / "ttyS0"
    real.touch()
    link = tmp_path / "serial0"
    link.symlink_to(real)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"console={link},115200 console=tty1 root=PARTUUID=abc-02 rootfstype=ext4\n")
    assert _port.console_on(str(real), str(cmdline)) == str(link)
    assert _port.console_on(str(tmp_path / "ttyAMA0"), str(cmdline)) is None
    cmdline.write_text("console=tty1 quiet\n")
    assert _port.console_on(str(real), str(cmdline)) is None
    assert _port.console_on(str(real), str(tmp_path / "no-such-file")) is None


def test_pi5_debug_header_is_named(tmp_path, monkeypatch):
    debug = tmp_path / "ttyAMA10"
    debug.touch()
    link = tmp_path / "serial0"
    link.symlink_to(debug)
    monkeypatch.setattr(_port, "PI5_DEBUG_UART", str(debug))
    assert _port.describe_port(str(link)) == f"{link} (-> {debug}, the Pi 5 debug header)"
    assert _port.describe_port(str(debug)) == str(debug)
