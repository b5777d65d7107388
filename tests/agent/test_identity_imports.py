"""With an identity on disk the daemon starts without ``cryptography`` (about 8 MB on a Pi).

Real subprocesses: a fresh interpreter importing what ``pibridge run`` imports,
and ``pibridge run`` itself against the simulator with Python's import log on
(``PYTHONPROFILEIMPORTTIME``), once to provision and once more as a Pi boots
every day after.  Hardware and test libraries must stay out too: the mock
driver needs none of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pibridge.agent.cli import identity_directory
from pibridge.agent.identity import load_identity
from support.agent_broker import CLIENT_ID, issue_identity

REPO = Path(__file__).resolve().parents[2]
NOT_AT_START = ("cryptography", "gpiozero", "adafruit_dht", "board", "smbus2", "hypothesis", "pytest")

PROBE = """
import json, sys
import pibridge.bridge.daemon, pibridge.agent.client
from pibridge.agent import identity
{action}
print(json.dumps({{"result": result, "loaded": sorted({{m.split(".")[0] for m in sys.modules}} & set(sys.argv[1:]))}}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NOTIFY_SOCKET", None)
    return env


def _probe(action: str, cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(action=action), *NOT_AT_START], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_loading_an_identity_after_the_daemons_imports_loads_no_cryptography(pki, tmp_path):
    issue_identity(pki, tmp_path / "identity")
    found = _probe(f"result = identity.load_identity({str(tmp_path / 'identity')!r}).client_id", tmp_path)
    assert found == {"result": CLIENT_ID, "loaded": []}


def test_making_a_key_does_load_cryptography(tmp_path):
    found = _probe("result = identity.generate_key('ec').curve.name", tmp_path)
    assert found == {"result": "secp256r1", "loaded": ["cryptography"]}


def _imported(log: Path) -> set[str]:
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in log.read_text(errors="replace").splitlines() if line.startswith("import time:")}


def _run_until_pushed(config: Path, log: Path, sim, storage: Path, timeout: float = 30) -> None:
    """Start ``pibridge run``, wait until the simulator stored a new value from it, stop it with SIGTERM."""

    def stored() -> int:
        identity = load_identity(identity_directory(storage))
        return len(sim.store.values(identity.client_id)) if identity else 0

    before = stored()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pibridge.cli", "run", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=config.parent,
                                env=_env(PYTHONPROFILEIMPORTTIME="1"))
    try:
        deadline = time.monotonic() + timeout
        while stored() <= before:
            assert proc.poll() is None, f"pibridge run exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no value from pibridge run within {timeout:g} s:\n{log.read_text()}"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()


@pytest.mark.timeout(120)
def test_pibridge_run_with_an_identity_on_disk_loads_no_cryptography(sim, tmp_path):
    storage = tmp_path / "storage"
    sensors = "".join(
        f'\n[[sensors]]\nname = "mock{i}"\ndriver = "mock"\ninterval = 0.5\nmetrics = ["temperature", "humidity"]\n'
        for i in range(3)
    )
    config = tmp_path / "pibridge.toml"
    config.write_text(
        f'[agent]\nhost = "127.0.0.1"\nprovision_port = {sim.provision_port}\napi_port = {sim.api_port}\n'
        f'ca_file = {json.dumps(str(sim.ca_file))}\nclient_name = "imports"\ntimeout = 5.0\n'
        f'\n[storage]\ndir = {json.dumps(str(storage))}\n{sensors}'
    )

    _run_until_pushed(config, tmp_path / "first.log", sim, storage)
    first = _imported(tmp_path / "first.log")
    assert "cryptography" in first, "the first start makes a key, so the import log must show cryptography"

    _run_until_pushed(config, tmp_path / "second.log", sim, storage)
    second = _imported(tmp_path / "second.log")
    assert "pibridge" in second and "paho" in second, "the import log of the second start is missing"
    assert second.isdisjoint(NOT_AT_START), sorted(second & set(NOT_AT_START))
    assert len(sim.store.clients()) == 1, "the second start should reuse the identity, not provision again"
