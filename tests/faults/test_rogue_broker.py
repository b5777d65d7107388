"""A broker with a different CA answers on the agent's ports: the bridge sends it nothing.

The rogue is a second simulator with its own CA.  Its store records every
client it signs and every value pushed to it, so "nothing" is checked where
it counts: the rogue never saw a CSR, a sensor or a value.  Two cases:

* the bridge's very first start, configured with the real agent's CA but the
  rogue's ports: it must not even ask the rogue for a certificate;
* a provisioned bridge whose agent is replaced by the rogue on the same ports
  (a spoofed host): it must refuse the rogue's certificate and keep the
  readings for the real agent.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

from tests.faults.bridge import Bridge, mock, wait_until
from tests.faults.checks import assert_no_gaps, readings

SENSORS = [mock("meter", 0.2, seed=1)]


def assert_rogue_got_nothing(rogue) -> None:
    assert rogue.store.clients() == [], "the bridge sent the rogue a CSR"
    with closing(sqlite3.connect(f"file:{rogue.state_dir / 'state.db'}?mode=ro", uri=True)) as db:
        pushed = db.execute("SELECT count(*) FROM pushed_values").fetchone()[0]
        sensors = db.execute("SELECT count(*) FROM sensors").fetchone()[0]
    assert (pushed, sensors) == (0, 0), f"the rogue received {pushed} values and {sensors} sensors"


def test_first_start_against_a_rogue_sends_nothing(tmp_path, sim, sim_factory):
    rogue = sim_factory()
    bridge = Bridge(tmp_path, rogue, SENSORS, name="victim", ca_file=sim.ca_file).start()
    text = bridge.wait_log(lambda t: "does not vouch for" in t and "check ca_file" in t, 20,
                           "the bridge refusing the rogue's certificate, and the fix")
    bridge.assert_running()
    assert "Traceback" not in text
    assert bridge.stop() == 0
    assert_rogue_got_nothing(rogue)


def test_agent_replaced_by_a_rogue_on_the_same_ports(tmp_path, sim_factory):
    real = sim_factory()
    bridge = Bridge(tmp_path, real, SENSORS, name="victim").start()
    bridge.wait_values(10, timeout=30)
    client_id = bridge.client_id
    state = real.state_dir
    ports = {"provision_port": real.provision_port, "api_port": real.api_port}
    real.stop()
    rogue_from = time.time() * 1000
    rogue = sim_factory(**ports)
    text = bridge.wait_log(lambda t: "does not vouch for" in t, 30, "the bridge refusing the rogue's certificate")
    bridge.assert_running()
    assert "Traceback" not in text
    assert_rogue_got_nothing(rogue)
    rogue.stop()
    rogue_to = time.time() * 1000
    # The real agent comes back on its ports: what was taken meanwhile arrives there.
    real = sim_factory(state, **ports)
    bridge.sim = real
    wait_until(lambda: max(readings(bridge.values(client_id))["meter"]) > rogue_to + 1000, 60,
               "readings from after the rogue period")
    assert bridge.stop() == 0
    stamps = sorted(readings(bridge.values(client_id))["meter"])
    assert_no_gaps(stamps, 0.2, "meter")
    assert sum(rogue_from <= ts <= rogue_to for ts in stamps) >= (rogue_to - rogue_from) / 200 - 2
