"""The client is deleted on the agent while the bridge runs.

With ``reprovision = true`` the bridge gets a new certificate, sets its
sensors up again under the new client ID and delivers everything, the
readings taken while it had no valid identity included (nothing lost across
the change of identity).  Without it, the bridge keeps running and
buffering, and says exactly what to do: where to set ``reprovision``, or
which directory to delete.
"""

from __future__ import annotations

import shutil

import pytest

from pibridge.agent.client import AgentClient
from pibridge.agent.identity import load_identity
from tests.faults.bridge import Bridge, mock, wait_until
from tests.faults.checks import assert_complete, assert_no_gaps, readings

INTERVAL = 0.25
SENSORS = ("hive", "coop")


def delete_on_the_agent(bridge: Bridge, sim, tmp_path) -> str:
    """Delete the bridge's client the way the TeamViewer side would, with a copy of its identity."""
    copy = tmp_path / "copy-of-identity"
    shutil.copytree(bridge.storage / "identity", copy)
    identity = load_identity(copy)
    with AgentClient(identity, host="127.0.0.1", port=sim.api_port, ca_file=sim.ca_file) as other:
        assert other.wait_connected(10)
        other.delete_client()
    wait_until(lambda: not sim.store.is_active(identity.client_id), 10, "the agent to revoke the client")
    return identity.client_id


def test_reprovisions_and_loses_nothing_across_the_new_identity(tmp_path, sim):
    sensors = [mock(name, INTERVAL, seed=i) for i, name in enumerate(SENSORS)]
    bridge = Bridge(tmp_path, sim, sensors, name="revoked", agent={"reprovision": True}).start()
    bridge.wait_values(10, timeout=30)
    old = delete_on_the_agent(bridge, sim, tmp_path)
    new = wait_until(lambda: [c for c in bridge.client_ids() if c != old], 40, "a new client ID")[0]
    bridge.wait_values(40, timeout=40, client_id=new)
    bridge.assert_running()
    assert bridge.stop() == 0
    assert "getting a new certificate because reprovision = true" in bridge.log_text()
    assert {s["name"] for s in sim.store.sensors(new)} == set(SENSORS)
    merged = bridge.values(old) + bridge.values(new)
    assert_complete(merged, {s: 2 for s in SENSORS})
    got = readings(merged)
    for sensor in SENSORS:
        assert_no_gaps(sorted(got[sensor]), INTERVAL, sensor)


@pytest.mark.slow  # the everyday case is in tests/bridge/test_e2e.py; this one also checks the wording
def test_without_reprovision_it_keeps_buffering_and_says_what_to_do(tmp_path, sim):
    sensors = [mock(name, INTERVAL, seed=i) for i, name in enumerate(SENSORS)]
    bridge = Bridge(tmp_path, sim, sensors, name="revoked").start()
    bridge.wait_values(10, timeout=30)
    old = delete_on_the_agent(bridge, sim, tmp_path)
    text = bridge.wait_log(lambda t: "set reprovision = true" in t, 40, "advice on what to do")
    line = next(line for line in text.splitlines() if "set reprovision = true" in line)
    assert old in line and str(bridge.config) in line and str(bridge.storage / "identity") in line, line
    assert "Traceback" not in text
    wait_until(lambda: "REFUSED" in bridge.status().stdout, 20, "pibridge status to show the refusal")
    bridge.assert_running()
    assert bridge.client_ids() == [old], "it must not get a new identity on its own"
    assert bridge.stop() == 0
