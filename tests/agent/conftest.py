"""Fixtures of the agent-client tests: our own CA and Mosquitto, a scripted agent, a connected client."""

from __future__ import annotations

from pathlib import Path

import pytest

from pibridge.agent.client import AgentClient, Backoff
from pibridge.agent.identity import Identity
from support.agent_broker import CLIENT_ID, CsrSigner, Mosquitto, Pki, ScriptedAgent, issue_identity

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki) -> Mosquitto:
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), pki)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def agent(broker) -> ScriptedAgent:
    agent = ScriptedAgent(broker).start()
    yield agent
    agent.stop()


@pytest.fixture
def signer(broker, pki) -> CsrSigner:
    signer = CsrSigner(broker, pki, CLIENT_ID)
    yield signer
    signer.stop()


@pytest.fixture
def identity(pki, tmp_path) -> Identity:
    return issue_identity(pki, tmp_path / "identity")


@pytest.fixture
def make_client(broker, pki):
    clients = []

    def make(identity: Identity, *, ca_file: Path | None = None, timeout: float = 2.0, **kwargs) -> AgentClient:
        kwargs.setdefault("backoff", FAST_BACKOFF)
        client = AgentClient(identity, host="localhost", port=broker.api_port, ca_file=ca_file or pki.ca_file,
                             timeout=timeout, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()


@pytest.fixture
def client(make_client, identity) -> AgentClient:
    client = make_client(identity)
    client.start()
    assert client.wait_connected(5), "client did not connect to the test broker"
    return client
