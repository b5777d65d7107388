"""What survives a process killed with SIGKILL: exactly what was committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from outbox_support import NOW_MS, child_env, make_readings, timestamps

from pibridge.outbox import Outbox, read_stats

CHILD_PRELUDE = textwrap.dedent(
    f"""
    import os, signal, sys
    from pibridge.outbox import Outbox
    from pibridge.readings import Reading

    def readings(count, start):
        return [Reading("greenhouse-bme280", {NOW_MS} + start + i,
                        {{"temperature": 20.0 + (start + i) / 1000, "humidity": 55.5, "pressure": 1013.25,
                          "gas": 12345.0 + start + i, "altitude": -3.0}}) for i in range(count)]
    """
)


def run_child(body: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(body), *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


def test_after_sigkill_exactly_the_committed_readings_are_there(tmp_path):
    path = tmp_path / "outbox.sqlite"
    done = run_child(
        """
        ob = Outbox(sys.argv[1], auto_commit=False)
        ob.append(readings(700, 0))
        ob.commit()
        ob.append(readings(300, 700))
        ob.commit()
        ob.append(readings(250, 1000))      # appended, never committed
        assert ob.stats().in_memory == 250
        print("ready", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        str(path),
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout == "ready\n"
    with Outbox(path, auto_commit=False) as ob:
        entries = ob.peek(10_000)
        assert [e.reading for e in entries] == make_readings(1000)
        assert ob.stats().depth == 1000
        ob.append(make_readings(1, start=5000))
        assert ob.peek(2000)[-1].id > entries[-1].id


def test_killed_from_outside_while_committing_keeps_every_reported_commit(tmp_path):
    path = tmp_path / "outbox.sqlite"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD_PRELUDE
            + textwrap.dedent(
                """
                ob = Outbox(sys.argv[1], auto_commit=False)
                start = 0
                while True:
                    ob.append(readings(97, start))
                    start += 97
                    ob.commit()
                    print(start, flush=True)
                """
            ),
            str(path),
        ],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reported = [int(child.stdout.readline()) for _ in range(20)]
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    with Outbox(path, auto_commit=False) as ob:
        got = timestamps(ob.peek(1_000_000))
    # Everything reported committed is there, in order, and nothing but whole batches after it.
    assert len(got) >= reported[-1]
    assert len(got) % 97 == 0
    assert got == [NOW_MS + i for i in range(len(got))]
    assert read_stats(path).depth == len(got)
