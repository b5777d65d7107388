"""Hostile text and a careless umask: no forged log line, no world-readable file.

A storage path holding a newline and an escape sequence (TOML allows both in a
string) is logged by the daemon in several lines; each must stay one line with
the characters escaped.  The daemon is started with umask 000, as from a
careless shell: what it creates must still be private (directories 0700, files
0600).
"""

from __future__ import annotations

import stat

from tests.faults.bridge import Bridge, mock

FORGED = "2026-01-01 00:00:00 ERROR   pibridge: FORGED"


def test_a_hostile_storage_path_and_umask_000(tmp_path, sim):
    storage = tmp_path / f"store\n{FORGED}\x1b[2J"
    bridge = Bridge(tmp_path, sim, [mock("attic", 0.2)], name="hostile", storage=storage)
    bridge.start(umask=0o000)
    bridge.wait_values(6, timeout=60)
    bridge.wait_log(lambda t: "delivering to the agent" in t, 20, "delivery")
    status = bridge.status()
    assert bridge.stop() == 0

    lines = bridge.log_text().splitlines()
    assert not [line for line in lines if line.startswith(FORGED)], "a forged line reached the log"
    assert any("store\\n2026-01-01" in line and "\\x1b[2J" in line for line in lines)
    assert "\x1b" not in bridge.log_text()
    assert "\x1b" not in status.stdout and not any(line.startswith(FORGED) for line in status.stdout.splitlines())

    created = [storage, *storage.rglob("*")]
    assert len(created) >= 6, [p.name for p in created]  # registry, state, outbox and its files, identity
    loose = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in created
             if stat.S_IMODE(p.lstat().st_mode) & 0o077}
    assert not loose, f"readable or writable by others under umask 000: {loose}"
    assert stat.S_IMODE(storage.stat().st_mode) == 0o700
