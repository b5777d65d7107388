"""The simulator starts, serves a provisioned client, and stops cleanly."""

from tests.support.mqtt_client import Mqtt, provision


def test_a_provisioned_client_gets_its_ping_echoed(sim, tmp_path):
    ident = provision(sim.host, sim.provision_port, sim.ca_file, tmp_path)
    client = Mqtt(sim.host, sim.api_port, sim.ca_file, ident.cert, ident.key).connect()
    try:
        client.subscribe(f"/v1.0/{ident.client_id}/ping/info/inbox")
        client.publish(f"/v1.0/{ident.client_id}/ping", {"request": "Some Message"})
        assert client.expect_json(f"/v1.0/{ident.client_id}/ping/info/inbox") == {"answer": "Some Message"}
    finally:
        client.close()
    assert [c["client_id"] for c in sim.store.clients()] == [ident.client_id]


def test_stop_ends_the_broker_process(sim_factory):
    simulator = sim_factory()
    process_id = simulator.broker.pid
    assert process_id is not None
    simulator.stop()
    assert not simulator.broker_running
