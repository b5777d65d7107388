"""What ``pibridge check`` says about the agent: the CA file, and the two ports against a real simulator.

Every case a first run on a Pi meets: no agent installed (no CA file), a CA
the service user cannot read, a CA file that holds no certificate, nothing
listening, another service on the port, another CA, the ports swapped, and
a client the agent no longer accepts.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from pibridge.agent.client import AgentClient
from pibridge.agent.identity import Identity, provision
from pibridge.bridge import check
from pibridge.bridge.config import AgentConfig
from pibridge.bridge.preflight import check_ca_file, check_storage_dir, probe_agent
from tests.support.sim import free_port


def agent_config(sim, **changes) -> AgentConfig:
    values = dict(host=sim.host, provision_port=sim.provision_port, api_port=sim.api_port, ca_file=sim.ca_file,
                  timeout=5.0)
    values.update(changes)
    return AgentConfig(**values)


def by_subject(findings):
    return {f.subject.split(" ")[0]: f for f in findings}


# ---------------------------------------------------------------- the CA file


def test_a_missing_ca_file_says_the_agent_is_not_installed(tmp_path):
    finding = check_ca_file(tmp_path / "TeamViewerAuthority.crt")
    assert not finding.ok
    assert "does not exist" in finding.message
    assert "install the TeamViewer IoT Agent" in finding.fix and "armhf" in finding.fix


def test_a_directory_is_not_a_ca_file(tmp_path):
    finding = check_ca_file(tmp_path)
    assert not finding.ok and "is a directory" in finding.message


def test_a_file_without_a_certificate_is_named(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    finding = check_ca_file(path)
    assert not finding.ok and "does not hold a certificate" in finding.message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user cannot read")
def test_a_ca_the_service_user_cannot_read_names_the_user_and_the_fix(sim):
    # pytest's own temporary directories are closed to other users, so build an open tree
    base = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        base.chmod(0o755)
        certs = base / "certs"
        certs.mkdir(mode=0o700)
        path = certs / "ca.crt"
        path.write_bytes(sim.ca_file.read_bytes())
        path.chmod(0o600)
        closed_dir = check_ca_file(path, service_user="nobody")
        assert not closed_dir.ok
        assert "not readable by user 'nobody'" in closed_dir.message and str(certs) in closed_dir.message
        certs.chmod(0o755)
        closed_file = check_ca_file(path, service_user="nobody")
        assert not closed_file.ok and "-rw-------" in closed_file.message and "chmod g+r" in closed_file.fix
        path.chmod(0o644)
        assert check_ca_file(path, service_user="nobody").ok
    finally:
        shutil.rmtree(base)


def test_the_simulators_ca_is_a_good_ca_file(sim):
    assert check_ca_file(sim.ca_file).ok


# ---------------------------------------------------------------- the ports


def test_a_running_agent_answers_on_both_ports(sim):
    findings = by_subject(probe_agent(agent_config(sim), identity=None))
    assert findings["provisioning"].ok, findings["provisioning"].describe()
    assert findings["API"].ok, findings["API"].describe()


def test_swapped_ports_are_named_as_swapped(sim):
    config = agent_config(sim, provision_port=sim.api_port, api_port=sim.provision_port)
    findings = probe_agent(config, identity=None)
    assert not any(f.ok for f in findings)
    assert all("swapped" in f.message for f in findings)
    assert f"provision_port = {sim.provision_port} and api_port = {sim.api_port}" in findings[0].fix


def test_nothing_listening_says_to_start_the_agent(sim):
    findings = by_subject(probe_agent(agent_config(sim, provision_port=free_port(), api_port=free_port()), None))
    for finding in findings.values():
        assert not finding.ok and finding.message == "nothing listens there"
        assert "systemctl start" in finding.fix


def test_another_ca_is_an_untrusted_certificate(sim_factory, sim):
    other = sim_factory()
    findings = by_subject(probe_agent(agent_config(sim, ca_file=other.ca_file), None))
    assert not findings["provisioning"].ok
    assert "is not signed by" in findings["provisioning"].message


def test_a_port_that_does_not_speak_tls_is_recognised(sim):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        findings = by_subject(probe_agent(agent_config(sim, provision_port=port), None))
    finally:
        server.join(5)
        listener.close()
    assert not findings["provisioning"].ok
    assert "does not speak TLS" in findings["provisioning"].message


def test_a_deleted_client_is_told_to_reprovision(sim, tmp_path):
    identity = provision(tmp_path / "identity", host=sim.host, port=sim.provision_port, ca_file=sim.ca_file,
                         client_name="preflight")
    config = agent_config(sim)
    accepted = probe_agent(config, identity)
    assert [f.ok for f in accepted] == [True, True, True]
    assert "accepts this client" in accepted[2].message
    kept = tmp_path / "kept"  # deleting the client removes its files; the agent's refusal is the point
    shutil.copytree(identity.cert_file.parent, kept)
    client = AgentClient(identity, host=sim.host, port=sim.api_port, ca_file=sim.ca_file, timeout=5.0)
    client.start()
    try:
        assert client.wait_connected(10)
        client.delete_client()
    finally:
        client.stop()
    stale = Identity(identity.client_id, kept / identity.key_file.name, kept / identity.cert_file.name,
                     identity.not_after)
    refused = probe_agent(config, stale)
    assert not refused[2].ok and "reprovision = true" in refused[2].fix


# ---------------------------------------------------------------- through pibridge check


def write_config(tmp_path: Path, agent: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[agent]\n{agent}\n[storage]\ndir = "{tmp_path / "state"}"\n'
                    '[[sensors]]\nname = "bench"\ndriver = "mock"\ninterval = 5.0\n', encoding="utf-8")
    return path


def test_check_reports_a_missing_ca_file_even_without_agent(tmp_path, capsys):
    path = write_config(tmp_path, f'ca_file = "{tmp_path / "missing.crt"}"')
    code = check.main(["--config", str(path)])
    out = capsys.readouterr().out
    assert code == 0  # the sensors are fine; --agent makes the agent's state the exit status
    assert "PROBLEM agent CA file" in out and "does not exist" in out
    assert "The agent is not usable yet" in out


def test_check_with_agent_exits_3_when_the_agent_is_not_running(sim, tmp_path, capsys):
    path = write_config(tmp_path, f'host = "{sim.host}"\nca_file = "{sim.ca_file}"\n'
                                  f"provision_port = {free_port()}\napi_port = {free_port()}")
    assert check.main(["--config", str(path), "--agent"]) == check.AGENT_UNUSABLE
    out = capsys.readouterr().out
    assert out.count("nothing listens there") == 2


def test_check_with_agent_against_the_simulator_is_all_ok(sim, tmp_path, capsys):
    path = write_config(tmp_path, f'host = "{sim.host}"\nca_file = "{sim.ca_file}"\n'
                                  f"provision_port = {sim.provision_port}\napi_port = {sim.api_port}")
    assert check.main(["--config", str(path), "--agent"]) == 0
    out = capsys.readouterr().out
    assert "PROBLEM" not in out and out.count("ok      ") == 3


# ---------------------------------------------------------------- the storage directory

MOUNTS = """/dev/mmcblk0p2 / ext4 rw,noatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw 0 0
tmpfs /run tmpfs rw,nosuid 0 0
"""


@pytest.mark.parametrize("path, ok, where", [
    ("/var/lib/pibridge", True, "/"),
    ("/tmp/pibridge/state", False, "/tmp"),
    ("/tmpfiles/pibridge", True, "/"),
    ("/run/pibridge", False, "/run"),
])
def test_a_storage_dir_on_tmpfs_is_a_warning(path, ok, where):
    finding = check_storage_dir(Path(path), MOUNTS)
    assert finding.ok is ok
    assert f"({where})" in finding.message
    if not ok:
        assert "vanish at the next reboot" in finding.message and "/var/lib/pibridge" in finding.fix


def test_check_warns_about_a_storage_dir_on_this_machines_tmpfs(tmp_path, capsys):
    from pibridge.bridge.preflight import mount_of

    point, kind = mount_of(Path("/dev/shm"))
    if kind != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm here")
    path = tmp_path / "config.toml"
    path.write_text('[storage]\ndir = "/dev/shm/pibridge-check-test"\n'
                    '[[sensors]]\nname = "bench"\ndriver = "mock"\ninterval = 5.0\n', encoding="utf-8")
    check.main(["--config", str(path)])
    assert "WARNING storage dir /dev/shm/pibridge-check-test: is on tmpfs" in capsys.readouterr().out
