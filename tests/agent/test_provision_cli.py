"""`pibridge provision`: prints the client ID, reuses the identity, reads the config, fails clearly."""

from __future__ import annotations

import stat
import subprocess
import sys

from cryptography import x509

from pibridge.agent.cli import provision_main
from support.agent_broker import CLIENT_ID


def _args(broker, pki, directory, *extra):
    return ["--host", "localhost", "--port", str(broker.provision_port), "--ca-file", str(pki.ca_file),
            "--dir", str(directory), "--key-type", "ec", "--timeout", "5", *extra]


def test_prints_the_client_id_and_reuses_the_identity(broker, pki, signer, tmp_path, capsys):
    assert provision_main(_args(broker, pki, tmp_path / "id", "--name", "greenhouse")) == 0
    assert capsys.readouterr().out == f"{CLIENT_ID}\n"
    key = (tmp_path / "id" / "client.key").read_bytes()
    assert provision_main(_args(broker, pki, tmp_path / "id", "--name", "greenhouse")) == 0
    assert capsys.readouterr().out == f"{CLIENT_ID}\n"
    assert len(signer.csrs) == 1 and (tmp_path / "id" / "client.key").read_bytes() == key


def test_settings_come_from_the_config_file(broker, pki, signer, tmp_path, capsys):
    config = tmp_path / "pibridge.toml"
    config.write_text(
        f'[agent]\nhost = "localhost"\nprovision_port = {broker.provision_port}\n'
        f'ca_file = "{pki.ca_file}"\nclient_name = "from-config"\n'
        f'[storage]\ndir = "{tmp_path / "state"}"\n'
    )
    assert provision_main(["--config", str(config), "--key-type", "ec", "--timeout", "5"]) == 0
    assert capsys.readouterr().out == f"{CLIENT_ID}\n"
    identity_dir = tmp_path / "state" / "identity"
    assert stat.S_IMODE(identity_dir.stat().st_mode) == 0o700
    assert (identity_dir / "client.crt").exists()
    assert x509.load_pem_x509_csr(signer.csrs[0]).subject.rfc4514_string() == "CN=from-config"


def test_config_with_a_wrong_type_names_file_table_and_key(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[agent]\nprovision_port = "18883"\n')
    assert provision_main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "[agent] provision_port must be a number" in err


def test_config_that_is_not_toml(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[agent\n")
    assert provision_main(["--config", str(config)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_invalid_name_fails_with_one_line_and_no_traceback(broker, pki, signer, tmp_path, capsys):
    assert provision_main(_args(broker, pki, tmp_path / "id", "--name", "my pi")) == 1
    err = capsys.readouterr().err
    assert "contains ' ' at position 3" in err and "Traceback" not in err
    assert signer.csrs == []


def test_the_installed_command_runs_end_to_end(broker, pki, signer, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pibridge.cli", "provision", *_args(broker, pki, tmp_path / "id", "--name", "pi")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{CLIENT_ID}\n"
    assert "provisioned client" in result.stderr
