"""``pibridge status`` from the state file and the outbox file alone (no agent, no daemon)."""

import json
import os
import time

from daemon_support import pibridge
from pibridge.bridge.status import collect, render
from pibridge.outbox import Outbox
from pibridge.readings import Reading


def write_config(tmp_path, storage):
    config = tmp_path / "pibridge.toml"
    config.write_text(f'[storage]\ndir = "{storage}"\n[[sensors]]\nname = "greenhouse"\ndriver = "mock"\n'
                      'interval = 5.0\n')
    return config


def state(pid, *, connected=True, written_at=None, **sensor):
    now = time.time()
    return {
        "pid": pid, "written_at": written_at or now, "started_at": now - 60, "client_id": "c0ffee" * 5 + "00",
        "agent": {"host": "localhost", "port": 18884, "connected": connected, "last_contact": now - 3,
                  "revoked": False, "problem": None if connected else "nothing listens on localhost:18884"},
        "delivery": {"mode": "live" if connected else "offline", "delivered": 42, "spilled": 0, "in_flight": 1,
                     "unroutable": 0, "refused": 0},
        "sensors": {"greenhouse": {"online": True, "reads": 10, "failures": 0, "error_streak": 0,
                                   "last_error": None, "last_values": {"temperature": 21.5},
                                   "last_timestamp_ms": int(now * 1000) - 2000, "sensor_id": "s1", **sensor}},
    }


def test_a_running_connected_bridge(tmp_path):
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / "state.json").write_text(json.dumps(state(os.getpid())))
    result = pibridge("status", "--config", str(write_config(tmp_path, storage)))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"running (pid {os.getpid()}, state written " in out
    assert "c0ffee" in out
    assert "reachable at localhost:18884" in out
    assert "outbox:     empty" in out
    assert "greenhouse" in out and "temperature=21.5 °C" in out and "online" in out


def test_an_unreachable_agent_with_buffered_and_dropped_readings(tmp_path):
    storage = tmp_path / "storage"
    outbox = Outbox(storage / "outbox.db", max_bytes=64 * 1024, auto_commit=False)
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    outbox.append(Reading("greenhouse", old + i, {"temperature": 20.0 + i % 7}) for i in range(20000))
    outbox.commit()
    outbox.close()
    (storage / "state.json").write_text(json.dumps(state(os.getpid(), connected=False, error_streak=4,
                                                         online=False, last_error="no answer on 0x76")))
    info = collect(storage)
    assert info["outbox"]["depth"] > 0
    assert info["outbox"]["dropped"] > 0
    text = render(info)
    assert "UNREACHABLE at localhost:18884" in text and "nothing listens" in text
    assert f"{info['outbox']['depth']} readings waiting" in text
    assert f"{info['outbox']['dropped']} dropped (max_bytes: {info['outbox']['dropped']})" in text
    assert "oldest taken 2.0 h ago" in text
    assert "OFFLINE" in text and "4 failed reads in a row: no answer on 0x76" in text
    result = pibridge("status", "--config", str(write_config(tmp_path, storage)), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["outbox"]["dropped"] == info["outbox"]["dropped"]


def test_a_stopped_daemon_and_a_fresh_install(tmp_path):
    storage = tmp_path / "storage"
    storage.mkdir()
    config = write_config(tmp_path, storage)
    result = pibridge("status", "--config", str(config))
    assert result.returncode == 1
    assert "NOT RUNNING (no state file" in result.stdout
    assert "(not provisioned yet)" in result.stdout
    # a state file left by a daemon that has gone (its pid no longer exists)
    (storage / "state.json").write_text(json.dumps(state(2**22 + 12345, written_at=time.time() - 600)))
    result = pibridge("status", "--config", str(config))
    assert result.returncode == 1
    assert "NOT RUNNING" in result.stdout and "its last state was written 10 min ago" in result.stdout
    assert "systemctl start pibridge" in result.stdout
    assert "[when the daemon last ran]" in result.stdout
    # its sensors are not shown as online now: nothing reads them
    sensor_lines = result.stdout.split("sensors:", 1)[1]
    assert "as they were when the daemon last ran (10 min ago)" in sensor_lines
    assert "was online" in sensor_lines and " online " not in sensor_lines.replace("was online", "")
    assert json.loads(pibridge("status", "--config", str(config), "--json").stdout)["state_age_s"] >= 600


def test_a_bad_config_is_reported_without_a_traceback(tmp_path):
    result = pibridge("status", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2
    assert "missing.toml" in result.stderr and "Traceback" not in result.stderr


def test_the_state_file_in_the_runtime_directory_is_found_when_it_names_this_storage(tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    storage.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))
    other = state(os.getpid(), client_id="other")
    other["storage_dir"] = str(tmp_path / "another-storage")
    (runtime / "state.json").write_text(json.dumps(other))
    assert collect(storage)["state"] is None
    ours = state(os.getpid())
    ours["storage_dir"] = str(storage.resolve())
    (runtime / "state.json").write_text(json.dumps(ours))
    (storage / "state.json").write_text(json.dumps(state(os.getpid(), written_at=time.time() - 3600)))
    info = collect(storage)
    assert info["running"] and info["state"]["storage_dir"] == str(storage.resolve())


def test_drops_the_running_daemon_holds_in_memory_are_shown_with_those_in_the_file(tmp_path):
    # The disk is full: the file still says 5 readings and 3 dropped for max_age; the daemon
    # knows of 2000 more in memory and 700 dropped for memory_limit, none of it written yet.
    storage = tmp_path / "storage"
    outbox = Outbox(storage / "outbox.db", auto_commit=False)
    old = int(time.time() * 1000) - 30 * 86_400_000
    outbox.append(Reading("greenhouse", old + i, {"temperature": 20.0}) for i in range(3))
    outbox.append(Reading("greenhouse", int(time.time() * 1000) + i, {"temperature": 20.0}) for i in range(5))
    outbox.commit()
    outbox.commit()
    outbox.close()
    live = {"depth": 2005, "in_memory": 2000, "dropped": 700, "dropped_reason": {"memory_limit": 700},
            "write_errors": 4, "last_error": "cannot write: database or disk is full", "healthy": False}
    (storage / "state.json").write_text(json.dumps({**state(os.getpid(), connected=False), "outbox": live}))
    info = collect(storage)
    assert info["outbox"]["dropped_reason"] == {"max_age": 3, "memory_limit": 700}
    assert (info["outbox"]["depth"], info["outbox"]["dropped"], info["outbox"]["healthy"]) == (2005, 703, False)
    assert "703 dropped (max_age: 3, memory_limit: 700)" in render(info)
    assert "disk is full" in render(info)
