"""While the agent stays away, the log says so once, then sums it up every 10 minutes: no line per attempt."""

import logging

from pibridge.bridge import daemon
from pibridge.bridge.config import parse_config


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_lasting_problem_is_logged_once_then_summed_up(tmp_path, monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(daemon.time, "monotonic", clock)
    config = parse_config(f'[storage]\ndir = "{tmp_path}"\n[[sensors]]\nname = "a"\ndriver = "mock"\ninterval = 5\n')
    bridge = daemon.Bridge(config)
    caplog.set_level(logging.INFO, logger=daemon.log.name)
    problem = "nothing listens on localhost:18883; is the agent running?"
    attempts = 0
    while clock.now < 1000.0 + 25 * 60:  # 25 minutes of retries at the capped pace
        bridge._retry_later(problem)
        attempts += 1
        clock.now = max(clock.now, bridge._next_attempt)
    lines = [r.getMessage() for r in caplog.records]
    assert attempts > 90  # every 15 s once the back-off is capped
    assert sum(line.startswith(problem) for line in lines) == 1
    summaries = [line for line in lines if line.startswith("still ")]
    assert len(summaries) == 2  # at 10 and at 20 minutes
    assert "attempts in the last 10 min" in summaries[0]
    bridge._retry_later("the agent CA file /x does not exist")
    assert caplog.records[-1].getMessage().startswith("the agent CA file /x does not exist")
