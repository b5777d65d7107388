"""Provisioning while the agent is away: the CA is checked first, one key serves every attempt, quiet logs.

A Pi whose agent is not installed or not running retries provisioning for
hours.  Each attempt used to make a new RSA key (seconds of CPU on a Pi Zero)
before even looking at the CA file, and logged two INFO lines.
"""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import serialization

from pibridge.agent import identity as ident
from pibridge.agent.errors import PibridgeAgentError, ProvisioningError
from tests.support.sim import free_port


@pytest.fixture
def keys_made(monkeypatch):
    made = []
    real = ident.generate_key

    def counting(key_type="rsa"):
        key = real(key_type)
        made.append(key)
        return key

    monkeypatch.setattr(ident, "generate_key", counting)
    return made


def public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_missing_ca_is_reported_before_any_key_is_made(tmp_path, keys_made):
    with pytest.raises(ProvisioningError, match="is the TeamViewer IoT Agent installed"):
        ident.provision(tmp_path / "id", host="127.0.0.1", port=free_port(), ca_file=tmp_path / "no-ca.crt",
                        client_name="retries", timeout=2)
    assert keys_made == []


def test_one_key_serves_every_attempt_until_the_agent_signs_it(sim, tmp_path, keys_made, caplog):
    directory = tmp_path / "id"
    closed = free_port()
    caplog.set_level(logging.DEBUG, logger=ident.__name__)
    for _ in range(3):
        with pytest.raises(PibridgeAgentError):
            ident.provision(directory, host=sim.host, port=closed, ca_file=sim.ca_file, client_name="retries",
                            timeout=2)
    assert len(keys_made) == 1
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sum("requesting a client certificate" in m for m in infos) == 1
    assert sum("no client identity" in m for m in infos) == 1

    identity = ident.provision(directory, host=sim.host, port=sim.provision_port, ca_file=sim.ca_file,
                               client_name="retries", timeout=5)
    assert len(keys_made) == 1
    stored = serialization.load_pem_private_key(identity.key_file.read_bytes(), password=None)
    assert public(stored) == public(keys_made[0])


def test_a_new_client_name_gets_a_new_request(sim, tmp_path, keys_made):
    directory = tmp_path / "id"
    for name in ("first", "second"):
        with pytest.raises(PibridgeAgentError):
            ident.provision(directory, host=sim.host, port=free_port(), ca_file=sim.ca_file, client_name=name,
                            timeout=2)
    assert len(keys_made) == 2
