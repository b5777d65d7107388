"""``pibridge check``: validate the config and read every sensor once, without the agent.

Run it after wiring a device or editing the config::

    $ pibridge check --config /etc/pibridge/config.toml

It prints every problem in the config (exit status 2), or reads each
enabled sensor once and prints what would be sent: the value in the
driver's unit after the metric's filters, and the same value in the agent's
unit -- or, when a filter holds it back, why it would not be pushed now
(a window not full yet, ...).  Derived values (dew point, ...) get rows of
their own.  Below the table, every metric with filters is shown step by
step: raw -> after each filter -> pushed.  Exit status 0 means every sensor
answered with good values, 1 that at least one did not (a refused or
dropped value counts as not good).  Nothing is sent anywhere.

It also checks the agent's CA file (exists, readable by the service user,
a certificate) and says what is wrong with it; ``--agent`` also tries the
agent's two ports (:mod:`pibridge.bridge.preflight`) and exits 3 when the
agent cannot be used.

Each sensor is read in its own daemon thread with a deadline, so a device
that hangs (a wedged I2C bus, a DHT22 that never answers) is reported as
such instead of hanging the command.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field

from pibridge.bridge.config import Config, ConfigError, SensorConfig, config_path, load_config
from pibridge.bridge.mapping import BadValue, SensorMapping
from pibridge.bridge.preflight import check_ca_file, check_storage_dir, probe_agent
from pibridge.drivers import Driver, DriverError, ReadFailed
from pibridge.readings import Reading, Value
from pibridge.transforms import Dropped, Passed, Trace

DEFAULT_TIMEOUT = 10.0
#: Exit status when the sensors are fine but ``--agent`` found the agent unusable.
AGENT_UNUSABLE = 3


@dataclass
class Row:
    """One line of the table: a quantity with its values, or a whole sensor's error."""

    quantity: str = ""
    metric: str = ""
    value: str = ""
    agent: str = ""
    error: str = ""
    #: The value after every filter step (empty for a quantity without filters).
    steps: list[str] = field(default_factory=list)


@dataclass
class SensorResult:
    """What reading one sensor once gave: a row per quantity, or an error."""

    sensor: SensorConfig
    rows: list[Row] = field(default_factory=list)
    ok: bool = False


class _OneRead:
    """Opens, reads (with the driver's retries) and closes one driver in a daemon thread."""

    def __init__(self, sensor: SensorConfig):
        self.sensor = sensor
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.values: dict[str, Value] | None = None
        self.error: str | None = None
        self.driver: Driver | None = None
        self._thread = threading.Thread(target=self._run, name=f"check-{sensor.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self.driver = self.sensor.create_driver()
            try:
                self.driver.open()
                self.values = self._read(self.driver)
            finally:
                _close_quietly(self.driver)  # drivers allow close() after a failed open()
        except DriverError as e:
            self.error = str(e) or type(e).__name__
        except Exception as e:  # a driver bug is reported in the table, not as a traceback
            self.error = f"{type(e).__name__} from the driver: {e}"
        finally:
            self.done.set()

    def _read(self, driver: Driver) -> dict[str, Value]:
        retries = max(0, int(driver.retries))
        while True:
            try:
                values = driver.read()
            except ReadFailed:
                if retries == 0 or self.cancelled.is_set():
                    raise
                retries -= 1
                # The device's own rate limit (a DHT22 needs 2 s between reads), not a guess.
                self.cancelled.wait(driver.min_interval())
                continue
            if not isinstance(values, dict):
                raise TypeError(f"the driver returned {type(values).__name__}, not a dict of values")
            return values

    def abandon(self) -> None:
        """Give up on a hanging read: ask the driver to close, from a thread of its own."""
        self.cancelled.set()
        driver = self.driver
        if driver is not None:
            threading.Thread(target=_close_quietly, args=(driver,), name=f"check-close-{self.sensor.name}",
                             daemon=True).start()


def _close_quietly(driver: Driver) -> None:
    try:
        driver.close()
    except Exception:
        pass  # check reads once and exits; an error while letting go of the device changes nothing


def read_sensors(sensors: list[SensorConfig], timeout: float = DEFAULT_TIMEOUT) -> list[SensorResult]:
    """Read every sensor once, all at the same time, each with *timeout* seconds to answer."""
    reads = [_OneRead(s) for s in sensors]
    for read in reads:
        read.start()
    deadline = time.monotonic() + timeout
    results = []
    for read in reads:
        answered = read.done.wait(max(0.0, deadline - time.monotonic()))
        if not answered:
            read.abandon()
            results.append(
                SensorResult(
                    read.sensor,
                    [Row(error=f"no answer within {timeout:g} s: the device hangs (check wiring, power, bus)")],
                )
            )
            continue
        results.append(_describe(read))
    return results


def _describe(read: _OneRead) -> SensorResult:
    sensor = read.sensor
    result = SensorResult(sensor)
    if read.error is not None:
        # Driver messages start with the sensor, which the table already shows:
        # "sensor 'x' (BME280 at 0x76 on I2C bus 1): ..." -> "BME280 at 0x76 on I2C bus 1: ..."
        message = re.sub(rf"^sensor {re.escape(repr(sensor.name))}(?: \((.*?)\))?: ", _where, read.error, count=1)
        result.rows.append(Row(error=message))
        return result
    mapping = SensorMapping(sensor, list(sensor.quantities))
    values = read.values or {}
    ok = True
    good: dict[str, Value] = {}
    refused: dict[str, str] = {}
    for name, value in values.items():
        if name not in mapping.quantities or name in mapping.derived:
            continue
        try:
            mapping.check(name, value)
        except BadValue as e:
            refused[name] = f"refused {_short(value)}: {e.problem}"
            continue
        good[name] = value
    try:
        outcome = mapping.trace(Reading(sensor.name, int(time.time() * 1000), good))
    except BadValue as e:  # a filter's arithmetic overflowed
        refused[e.quantity] = f"refused {_short(e.value)}: {e.problem}"
        outcome = None
    for name, quantity in mapping.quantities.items():
        dropped = mapping.metrics[name].drop
        row = Row(quantity=name, metric="(dropped)" if dropped else mapping.metric_name(name))
        unit = "" if quantity.unit in ("bool", "text") else f" {quantity.unit}"
        derived = name in mapping.derived
        trace = outcome.traces.get(name) if outcome is not None else None
        if name in refused:
            row.error = refused[name]
            ok = False
        elif derived and outcome is not None and name in outcome.refused:
            row.error = f"not computed: {outcome.refused[name]}"
            ok = False
        elif not derived and name not in values:
            row.error = "no value: the driver did not report this quantity"
            ok = ok and dropped
        elif dropped:
            shown = values.get(name)
            row.value = "" if shown is None else _format(shown) + unit
            row.agent = "not sent (drop = true)"
        elif trace is None:
            row.error = "not computed: an input is missing or refused"
            ok = False
        else:
            row.steps = _steps(trace, unit, "computed" if derived else "raw")
            reached = _last_value(trace)
            row.value = "" if reached is None else _format(reached) + unit
            stopped = trace.stopped
            if stopped is None:
                row.agent = _agent_text(outcome.reading.values[name], quantity.agent_unit)
            elif isinstance(stopped, Dropped):
                row.error = f"dropped: {stopped.reason}"
                ok = False
            else:
                row.agent = f"not now: {stopped.reason}"
        result.rows.append(row)
    for name in values:
        if name not in mapping.quantities:
            result.rows.append(Row(quantity=name, error="the driver reported a quantity it does not declare"))
            ok = False
    result.ok = ok
    return result


def _last_value(trace: Trace) -> Value | None:
    """The value as far as it got: after the last filter that passed it on (the raw value if none did)."""
    reached = trace.raw
    for _, outcome in trace.steps:
        if isinstance(outcome, Passed):
            reached = outcome.value
    return reached


def _steps(trace: Trace, unit: str, first: str) -> list[str]:
    """``raw 21.4 °C``, then ``<filter>: <value>`` or ``<filter>: held (...)`` for each step."""
    parts = [f"{first} {_format(trace.raw)}{unit}"]
    for f, outcome in trace.steps:
        if isinstance(outcome, Passed):
            parts.append(f"{f.describe()}: {_format(outcome.value)}{unit}")
        elif isinstance(outcome, Dropped):
            parts.append(f"{f.describe()}: DROPPED ({outcome.reason})")
        else:
            parts.append(f"{f.describe()}: held ({outcome.reason})")
    return parts


def _where(match: re.Match) -> str:
    return f"{match.group(1)}: " if match.group(1) else ""


def _format(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _agent_text(value: Value, agent) -> str:
    if agent.unit is not None:
        return f"{_format(value)} {agent.unit.value}"
    return f"{_format(value)} {agent.annotation} (custom {agent.value_type.value})"


def format_table(results: list[SensorResult], disabled: list[SensorConfig]) -> str:
    """The results as aligned columns: sensor, driver, quantity -> metric, value, value sent."""
    header = ("SENSOR", "DRIVER", "QUANTITY", "METRIC", "VALUE", "SENT TO THE AGENT")
    lines: list[tuple[str, ...]] = []
    for result in results:
        first = True
        for row in result.rows:
            sensor = (result.sensor.name, result.sensor.driver) if first else ("", "")
            first = False
            if row.quantity:
                last = row.agent if not row.error else f"ERROR {row.error}"
                lines.append((*sensor, row.quantity, row.metric, row.value, last))
            else:
                lines.append((*sensor, f"FAILED: {row.error}"))
    for sensor in disabled:
        lines.append((sensor.name, sensor.driver, "(disabled: enabled = false, not read)"))
    widths = [len(h) for h in header]
    for line in lines:
        if len(line) == len(header):
            widths = [max(w, len(cell)) for w, cell in zip(widths, line)]
    for line in lines:
        if len(line) < len(header):  # a sensor-wide message: size the first two columns only
            widths[:2] = [max(w, len(cell)) for w, cell in zip(widths[:2], line[:2])]
    out = []
    for line in [header] + lines:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths)] + [line[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def format_steps(results: list[SensorResult]) -> str:
    """Each filtered metric's way from the raw value to what is pushed, one metric per line."""
    lines = []
    for result in results:
        for row in result.rows:
            if len(row.steps) > 1:
                verdict = row.agent or f"ERROR {row.error}"
                if row.agent and not row.agent.startswith("not now:"):
                    verdict = f"pushed {row.agent}"
                lines.append(f"  {result.sensor.name} / {row.metric}: " + " -> ".join(row.steps) + f" => {verdict}")
    if not lines:
        return ""
    return "Filters, raw -> each step -> pushed (one read: windows start empty, thresholds and throttles let it out):\n" + "\n".join(lines)


def _print_config_errors(path, error: ConfigError) -> None:
    count = len(error.errors)
    print(f"pibridge check: {path} has {count} problem{'s' if count != 1 else ''}:", file=sys.stderr)
    for problem in error.errors:
        print(f"  - {problem.describe()}", file=sys.stderr)
    print("Nothing was read. Fix the config and run `pibridge check` again.", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pibridge check",
        description="Validate the config and read every enabled sensor once. Needs no agent; sends nothing.",
        epilog="Exit status: 0 every sensor read OK, 1 a sensor failed, 2 the config has problems, "
        "3 (with --agent) the sensors are fine but the agent cannot be used.",
    )
    parser.add_argument("-c", "--config", metavar="PATH", help="config file (default: $PIBRIDGE_CONFIG, "
                        "else /etc/pibridge/config.toml)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT,
                        help=f"how long each sensor may take to answer (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--sensor", metavar="NAME", action="append",
                        help="read only this sensor (may be given more than once)")
    parser.add_argument("--agent", action="store_true",
                        help="also try the agent's provisioning and API ports and say what answers")
    args = parser.parse_args(argv)
    if not args.timeout > 0:
        parser.error("--timeout must be a positive number of seconds")
    # gpiozero warns once per pin library it tries; the table already says what is missing.
    warnings.filterwarnings("ignore", message="Falling back from")
    # What the filters drop is in the table; their one-time log lines are for the daemon's journal.
    for name in ("pibridge.transforms", "pibridge.mapping"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if hasattr(sys.stdout, "reconfigure"):
        # Units such as °C and µg/m³ must not crash a console that cannot show them.
        sys.stdout.reconfigure(errors="replace")

    path = config_path(args.config)
    try:
        config = load_config(path)
    except ConfigError as e:
        _print_config_errors(path, e)
        return 2
    chosen = _choose(config, args.sensor)
    if chosen is None:
        return 2
    enabled = [s for s in chosen if s.enabled]
    disabled = [s for s in chosen if not s.enabled]

    print(f"Config {path} is valid: {len(config.sensors)} sensor{'s' if len(config.sensors) != 1 else ''}, "
          f"{len(config.enabled_sensors)} enabled.")
    storage = check_storage_dir(config.storage.dir)
    if not storage.ok:
        print(f"  WARNING {storage.describe()}")
    agent_ok = _report_agent(config, probe=args.agent)
    print()
    results = read_sensors(enabled, args.timeout)
    print(format_table(results, disabled))
    print()
    steps = format_steps(results)
    if steps:
        print(steps)
        print()
    failed = [r.sensor.name for r in results if not r.ok]
    if not enabled:
        print("No enabled sensor to read.")
    elif failed:
        print(f"{len(results) - len(failed)} of {len(results)} sensors read OK; failed: {', '.join(failed)}.")
        return 1
    else:
        counted = f"All {len(results)} sensors" if len(results) > 1 else "The sensor"
        print(f"{counted} read OK. Nothing was sent to the agent.")
    if not agent_ok:
        print("The agent is not usable yet: see the PROBLEM lines above.")
        return AGENT_UNUSABLE if args.agent else 0
    return 0


def _report_agent(config: Config, probe: bool) -> bool:
    """Print what is known about the agent; False when something stops the daemon from using it."""
    agent = config.agent
    contacted = "contacted below" if probe else "not contacted; add --agent to try its ports"
    print(f"Agent {agent.host}:{agent.api_port} as client {agent.client_name!r} ({contacted}).")
    findings = [check_ca_file(agent.ca_file)]
    if probe and findings[0].ok:
        from pibridge.agent.cli import identity_directory
        from pibridge.agent.identity import load_identity

        findings += probe_agent(agent, load_identity(identity_directory(config.storage.dir)),
                                timeout=min(agent.timeout, 5.0))
    for finding in findings:
        print(f"  {'ok     ' if finding.ok else 'PROBLEM'} {finding.describe()}")
    return all(f.ok for f in findings)


def _choose(config: Config, names: list[str] | None) -> list[SensorConfig] | None:
    if not names:
        return list(config.sensors)
    known = {s.name: s for s in config.sensors}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"pibridge check: no sensor named {', '.join(map(repr, unknown))} in {config.path}; "
              f"sensors are: {', '.join(map(repr, known))}", file=sys.stderr)
        return None
    return [known[n] for n in dict.fromkeys(names)]
