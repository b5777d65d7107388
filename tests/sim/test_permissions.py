"""Started as root, Mosquitto drops to its own user; the simulator's files must let it, and keep the CA key private."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop only happens when started as root")


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.fixture
def open_dir():
    """A state directory every user can traverse (pytest's own temporary directories are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pibridge-sim-perm-"))
    path.chmod(0o755)
    yield path / "state"
    shutil.rmtree(path)


def test_in_a_reachable_directory_mosquitto_runs_as_its_own_user(open_dir, sim_factory, client_factory):
    try:
        entry = pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user on this system")
    sim = sim_factory(open_dir)
    assert sim.broker.run_as == "mosquitto"
    assert _uid_of(sim.broker.pid) == entry.pw_uid
    ca_key = sim.authority.ca_key_file.stat()
    assert (ca_key.st_uid, ca_key.st_mode & 0o777) == (0, 0o600)
    # It can read what it needs, and it works: a client gets answers.
    client = client_factory(sim)
    assert client.call("/ping", {"request": "hi"}, "/ping/info/inbox", "/ping/error/inbox")[0] == "answer"
    # ... also after a restart under its own user (persistence file written by it).
    sim.stop_broker()
    sim.start_broker()
    assert _uid_of(sim.broker.pid) == entry.pw_uid


def test_in_a_private_directory_mosquitto_stays_root(sim, client_factory):
    """pytest's tmp dirs are 0700: the mosquitto user could not read its config there, so it is not asked to."""
    assert sim.broker.run_as == "root"
    assert "user root" in sim.broker.config_file.read_text()
    client = client_factory(sim)
    assert client.call("/ping", {"request": "hi"}, "/ping/info/inbox", "/ping/error/inbox")[0] == "answer"
