"""The docs stay true to the code: every key, filter, derived value, driver, module and thread is
described, defaults and dependencies are the code's, and every path, link and command they cite
exists.

Each test reads the names from the code (the parser's dataclasses and key lists, the filter and
formula registries, the driver registry, the files under ``pibridge/`` and ``drivers/`` and their
imports, install.sh, the command line), so a new key, driver or module without its docs fails here,
and so does a doc that still describes one that is gone.  The unit table and the error example of
docs/configuration.md are checked in tests/bridge/test_config_examples.py, the README's config
example and its first two commands in tests/test_readme.py.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import fields
from pathlib import Path

import pytest

from pibridge.bridge.config import METRIC_KEYS, SENSOR_KEYS, AgentConfig, StorageConfig
from pibridge.drivers import available, driver_class
from pibridge.transforms.derived import FORMULAS
from pibridge.transforms.parse import FILTERS

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
DRIVERS = (ROOT / "docs" / "drivers.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def sections(text: str, level: int) -> dict[str, str]:
    """Heading text -> the text below it up to the next heading of the same or a higher level."""
    marks = list(re.finditer(rf"^(#{{1,{level}}}) (.+)$", text, re.M))
    found = {}
    for mark, following in zip(marks, marks[1:] + [None]):
        if len(mark.group(1)) == level:
            found[mark.group(2).strip()] = text[mark.end(): following.start() if following else len(text)]
    return found


def section(text: str, level: int, starts_with: str) -> str:
    matches = [body for heading, body in sections(text, level).items() if heading.startswith(starts_with)]
    assert len(matches) == 1, f"expected one heading starting with {starts_with!r}, found {len(matches)}"
    return matches[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in *text*, header and separator rows left out."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|") or re.fullmatch(r"[|\s:-]+", line):
            continue
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    return rows


def first_cell_names(text: str) -> set[str]:
    """The names a table's rows describe: each `code` word of the first cell (`min`, `max` is two)."""
    return {name for row in table_rows(text) for name in re.findall(r"`([^`]+)`", row[0])}


# --- configuration.md: every key the parser accepts, in its section, and no other ---------------

CONFIG_SECTIONS = {
    "`[agent]`": {f.name for f in fields(AgentConfig)},
    "`[storage]`": {f.name for f in fields(StorageConfig)},
    "`[log]`": {"level"},
    "`[[sensors]]`": set(SENSOR_KEYS),
    "`[sensors.metric.<quantity>]`": set(METRIC_KEYS),
}


@pytest.mark.parametrize("heading", CONFIG_SECTIONS)
def test_each_config_section_documents_exactly_the_keys_the_parser_accepts(heading):
    documented = first_cell_names(section(CONFIGURATION, 2, heading))
    assert documented == CONFIG_SECTIONS[heading], heading


@pytest.mark.parametrize("heading, defaults", [("`[agent]`", AgentConfig()), ("`[storage]`", StorageConfig())],
                         ids=["agent", "storage"])
def test_each_documented_default_is_the_parsers_default(heading, defaults):
    """A number is given as itself or in brackets after its text form (`"64 MiB"` (67108864))."""
    rows = {row[0].strip("`"): row for row in table_rows(section(CONFIGURATION, 2, heading))}
    for field in fields(defaults):
        value, cell = getattr(defaults, field.name), rows[field.name][2]
        if isinstance(value, bool):
            shown = [cell.strip("`")]
            value = str(value).lower()
        elif isinstance(value, (int, float)):
            shown = [float(alone or bracketed)
                     for alone, bracketed in re.findall(r"^`?(\d+(?:\.\d+)?)`?$|\((\d+(?:\.\d+)?)\)", cell)]
            value = float(value)
        else:
            shown = re.findall(r'`"([^"]*)"`', cell)
            value = str(value)
        assert value in shown, f"{heading} {field.name}: the parser's default is {value!r}, the docs say {cell!r}"


def test_every_filter_and_its_settings_are_documented_under_filters():
    body = section(CONFIGURATION, 2, "Filters")
    documented = first_cell_names(body)
    assert set(FILTERS) <= documented, f"filters without a row: {sorted(set(FILTERS) - documented)}"
    for name, cls in FILTERS.items():
        for key in cls.extra_keys:
            assert f"`{key}`" in body, f"the {name} filter's setting {key!r} is not described under Filters"


def test_every_derived_value_is_documented_with_its_unit_and_inputs():
    rows = {row[0].strip("`"): row for row in table_rows(section(CONFIGURATION, 2, "Derived values"))}
    assert set(rows) - {"name"} == set(FORMULAS)
    for name, formula in FORMULAS.items():
        _, unit, inputs, *_ = rows[name]
        assert unit.startswith(formula.unit), f"{name}: documented in {unit}, computed in {formula.unit}"
        for needed in formula.inputs + formula.keys:
            assert needed in inputs, f"{name} needs {needed!r}, its row says {inputs!r}"


# --- drivers.md: a section per driver, with its options, quantities and units ----------------------

def driver_sections() -> dict[str, str]:
    """Driver name -> its section of docs/drivers.md (a heading may name several drivers)."""
    found = {}
    for heading, body in sections(DRIVERS, 2).items():
        for name in heading.split(","):
            found[name.strip()] = body
    return found


def names_quantity(body: str, quantity: str) -> bool:
    """The section names the quantity in `code` or in a table's first cell; a numbered series
    (`a0` .. `a3`, `ch1_...` with `_voltage`) counts when its first member and its suffix are named."""
    if f"`{quantity}`" in body:
        return True
    if any(quantity in [c.strip() for c in row[0].split(",")] for row in table_rows(body)):
        return True
    series = re.fullmatch(r"([a-z]+)(\d+)(_\w+)?", quantity)
    if series:
        prefix, _, suffix = series.groups()
        first = re.search(rf"`{prefix}[01](_\.\.\.)?`", body)
        return bool(first) and (suffix is None or f"`{suffix}`" in body)
    return False


@pytest.mark.parametrize("name", sorted(available()))
def test_every_driver_has_a_section_with_its_options_quantities_and_units(name):
    body = driver_sections().get(name)
    assert body is not None, f"docs/drivers.md has no section whose heading names {name!r}"
    cls = driver_class(name)
    undocumented = [option for option in cls.options if f"`{option}`" not in body]
    assert not undocumented, f"{name}: options not described in its section: {undocumented}"
    for quantity in cls.provides:
        assert names_quantity(body, quantity.name), f"{name}: quantity {quantity.name!r} is not named"
        assert quantity.unit in body, f"{name}: unit {quantity.unit!r} of {quantity.name!r} is not given"


def documented_default_matches(cell: str, default: object, driver: str, address: bool) -> bool:
    """The cell starts with the default, or gives it for this driver (`pcf8574a`: 0x38, 1600 (ADS1015))."""
    if isinstance(default, bool):
        text = str(default).lower()
    elif address:
        text = f"0x{default:02x}"
    else:
        text = f"{default:g}" if isinstance(default, float) else str(default)
    cell = cell.strip("` ").lower()
    first = re.match(r"[^\s,(]+", cell)
    if first and (first.group(0).strip("`") == text or _same_number(first.group(0), default)):
        return True
    return driver in cell and re.search(rf"(?<![\w.]){re.escape(text)}(?![\w.])", cell) is not None


def _same_number(word: str, default: object) -> bool:
    try:
        return not isinstance(default, bool) and float(word.strip("`")) == float(default)
    except (TypeError, ValueError):
        return False


@pytest.mark.parametrize("name", sorted(available()))
def test_every_documented_option_default_is_the_drivers_default(name):
    """Scalar defaults only (numbers, booleans); lists, tables and "not set" are read by the eye."""
    cls = driver_class(name)
    for row in table_rows(driver_sections()[name]):
        options = re.findall(r"`([^`]+)`", row[0])
        if len(row) < 3 or not options or not set(options) <= set(cls.options):
            continue
        cells = [c.strip() for c in row[1].split(",")] if len(options) > 1 else [row[1]]
        for option, cell in zip(options, cells):
            default = cls.options[option].default
            if isinstance(default, (bool, int, float)):
                assert documented_default_matches(cell, default, name, option == "address"), (
                    f"{name}: option {option!r} defaults to {default!r}, docs/drivers.md says {cell!r}")


#: Sections of docs/drivers.md that describe no single driver.
GENERAL_SECTIONS = ("Contents", "Compensation from another sensor", "SPI and serial buses", "Writing a driver")


def test_no_section_or_config_row_describes_a_driver_that_does_not_exist():
    described = set(driver_sections()) - set(GENERAL_SECTIONS)
    assert described <= set(available()), f"sections for unknown drivers: {sorted(described - set(available()))}"
    row = next(row for row in table_rows(section(CONFIGURATION, 2, "`[[sensors]]`")) if row[0] == "`driver`")
    listed = set(re.findall(r"`(\w+)`", row[3]))
    assert listed <= set(available()), f"the driver row lists unknown drivers: {sorted(listed - set(available()))}"


def test_the_contents_list_every_driver_section():
    contents = section(DRIVERS, 2, "Contents")
    for heading in sections(DRIVERS, 2):
        if heading != "Contents":
            assert f"(#{anchor(heading)})" in contents, f"{heading!r} is missing from the contents"


# --- architecture.md: every module is named where its package is described ------------------------

def package_of(path: Path) -> tuple[str, str]:
    """(dotted package, module name) of a source file: drivers/ is the package pibridge.drivers."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "drivers":
        parts.insert(0, "pibridge")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts[:-1]), parts[-1]


def blocks_about(package: str) -> str:
    """The table rows and paragraphs of architecture.md that speak of *package*, and every section
    whose heading names it."""
    text = ARCHITECTURE
    found = [body for heading, body in sections(text, 2).items() if f"`{package}`" in heading]
    for block in re.split(r"\n\s*\n|\n(?=\|)", text):
        if f"`{package}`" in block or f"`{package} " in block:
            found.append(block)
    return "\n".join(found)


#: Modules not described in docs/architecture.md yet, each with what its description should say.
#: The test of each is skipped with that reason, so the gap shows in every run; keep this short.
NOT_DESCRIBED_YET = {
}

SOURCES = sorted(p for p in (ROOT / "pibridge").rglob("*.py")) + sorted((ROOT / "drivers").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_is_named_in_the_architecture(path):
    """A package is named by its dotted name, a module in a row, paragraph or section about its
    package (`reload`, `_bus.py`, `uart/_stream.py`).  A device driver's own module (a public one
    in a bus folder) is described by its section in docs/drivers.md instead, checked above."""
    package, module = package_of(path)
    relative = path.relative_to(ROOT)
    if str(relative) in NOT_DESCRIBED_YET:
        pytest.skip(f"{relative} is not described yet: {NOT_DESCRIBED_YET[str(relative)]}")
    if path.name == "__init__.py":
        dotted = f"{package}.{module}" if package else module
        folder = f"{relative.parent.name}/"
        assert f"`{dotted}`" in ARCHITECTURE or f"`{folder}`" in blocks_about(package), dotted
        return
    if package.startswith("pibridge.drivers.") and not module.startswith("_"):
        registering = {driver_class(name).__module__ for name in available()}
        assert f"{package}.{module}" in registering, f"{relative} registers no driver, so no section describes it"
        return
    about = blocks_about(package) + blocks_about(package.rsplit(".", 1)[0])
    spellings = [f"`{module}`", f"`{module}.py`", f"`{module}/`", f"/{module}.py`",
                 f"`{relative.parent.name}/{module}.py`"]
    assert f"`{package}.{module}`" in ARCHITECTURE or any(s in about for s in spellings), (
        f"{relative} is not named in docs/architecture.md where {package} is described"
    )


def module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")[1:]
    folder = ROOT / "drivers" if parts[:1] == ["drivers"] else ROOT / "pibridge"
    parts = parts[1:] if parts[:1] == ["drivers"] else parts
    base = folder.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """The pibridge modules *path* imports, at the top or inside a function."""
    import ast

    package, module = package_of(path)
    here = package.split(".") + ([module] if path.name == "__init__.py" else [])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] if node.level else [])
            base = ".".join(filter(None, [base, node.module])) if node.level else node.module
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if module_file(f"{base}.{alias.name}") else base)
    return {name for name in found if name.startswith("pibridge.")}


def test_each_package_imports_only_what_the_architecture_says_it_depends_on():
    rows = [row for row in table_rows(section(ARCHITECTURE, 2, "Module boundaries")) if row[0] != "package"]
    above: list[str] = []
    for row in rows:
        package = row[0].split()[0].strip("`")
        allowed: set[str] = set()
        for word in (w.strip(" `").split(" (")[0] for w in row[2].split(",")):
            if word == "all above":
                allowed.update(above)
            elif word and word != "—":
                allowed.add(f"pibridge.{word}")
        above.append(package)
        sources = [path for path in SOURCES if f"{'.'.join(filter(None, package_of(path)))}.".startswith(package + ".")]
        assert sources, f"no source files for {package}"
        for path in sources:
            for name in imported_modules(path):
                if name.startswith(package + ".") or name == package:
                    continue
                assert any(name == a or name.startswith(a + ".") for a in allowed), (
                    f"{path.relative_to(ROOT)} imports {name}, but architecture.md says {package} depends on {row[2]}")


# Threads of other processes or commands than `pibridge run`: the simulator's, the demo's screen,
# `pibridge check`'s one-shot readers.
NOT_IN_RUN = ("pibridge/sim/", "pibridge/demo.py", "pibridge/bridge/check.py")


def test_every_thread_the_daemon_starts_is_described():
    threads = section(ARCHITECTURE, 2, "Threads")
    for path in SOURCES:
        relative = str(path.relative_to(ROOT))
        if relative.startswith(NOT_IN_RUN):
            continue
        for name in re.findall(r"threading\.Thread\([^)]*?name=f?[\"']([^\"'{]+)", path.read_text(encoding="utf-8")):
            assert f"`{name}" in threads, f"thread {name!r} ({relative}) is not described under Threads"


#: Loggers not in the table yet, with the row they need; keep this short.
LOGGERS_NOT_DESCRIBED_YET: dict[str, str] = {}


def test_every_logger_of_the_daemon_is_in_the_logger_table():
    operation = (ROOT / "docs" / "operation.md").read_text(encoding="utf-8")
    documented = first_cell_names(section(operation, 2, "Logs")) | set(LOGGERS_NOT_DESCRIBED_YET)
    for path in SOURCES:
        relative = str(path.relative_to(ROOT))
        if relative.startswith(NOT_IN_RUN):
            continue
        package, module = package_of(path)
        own = f"{package}.{module}" if path.name != "__init__.py" else package
        for name in re.findall(r"logging\.getLogger\((__name__|\"[^\"]+\")\)", path.read_text(encoding="utf-8")):
            logger = own if name == "__name__" else name.strip('"')
            covered = (logger == row or (row.endswith(".*") and f"{logger}.".startswith(row[:-1])) for row in documented)
            assert any(covered), (
                f"logger {logger!r} ({relative}) is not in the table under Logs in docs/operation.md")


# --- every file the docs cite exists, every link between them resolves ----------------------------

REPO_FOLDERS = ("bench", "docs", "drivers", "examples", "pibridge", "scripts", "systemd", "tests", "udev")


def cited_paths(text: str) -> set[str]:
    """Repository paths written in `code`: starting with one of the repository's folders, a module
    path below pibridge/ or drivers/ (`bridge/registry.py`, `i2c/_bus.py`), or any relative path of a
    source or text file (which must then be in the repository too).  Placeholders (`DIR/...`,
    `<s>`), globs and absolute paths (the Pi's files) are left out."""
    found = set()
    for code in re.findall(r"`([^`\s]+)`", text):
        code = code.split("::")[0]
        if re.search(r"[<>*:]|\.\.\.", code) or code.startswith(("/", ".")):
            continue
        top = code.split("/")[0]
        in_repo_folder = top in REPO_FOLDERS or (ROOT / "pibridge" / top).is_dir() or (ROOT / "drivers" / top).is_dir()
        looks_like_a_file = re.search(r"\.(py|md|txt|toml|json|sh|cfg|ini|yaml|yml)$", code) and not top.isupper()
        if "/" in code and (in_repo_folder or looks_like_a_file):
            found.add(code)
    return found


def exists_in_repo(path: str) -> bool:
    return any((folder / path).exists() for folder in (ROOT, ROOT / "pibridge", ROOT / "drivers"))


@pytest.mark.parametrize("doc", [ROOT / "README.md"] + DOCS, ids=lambda p: p.name)
def test_every_cited_file_exists(doc):
    missing = sorted(p for p in cited_paths(doc.read_text(encoding="utf-8")) if not exists_in_repo(p))
    assert not missing, f"{doc.name} cites files that are not in the repository: {missing}"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M):
        base = anchor(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


@pytest.mark.parametrize("doc", [ROOT / "README.md"] + DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves_to_a_file_and_heading(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, fragment = target.partition("#")
        linked = (doc.parent / file).resolve() if file else doc
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{doc.name}: {broken}"


def test_the_anchor_rule_is_githubs():
    assert anchor("The client (`pibridge.agent.client.AgentClient`)") == "the-client-pibridgeagentclientagentclient"
    assert anchor("SCD30: CRC mismatch / Remote I/O error (clock stretching)") == (
        "scd30-crc-mismatch--remote-io-error-clock-stretching")
    assert anchors("# A\n## A\n") == {"a", "a-1"}


# --- the README's commands after the install work as written ---------------------------------------

def install_block() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = section(readme, 2, "Install on a Raspberry Pi").split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip()]


def install_script_value(name: str) -> str:
    return re.search(rf"^readonly {name}=(\S+)$", (ROOT / "install.sh").read_text(encoding="utf-8"), re.M).group(1)


def test_the_readme_edits_the_file_the_installer_writes_and_restarts_its_unit():
    lines = install_block()
    assert f"sudoedit {install_script_value('CONF')}" in lines
    service = install_script_value("SERVICE")
    assert (ROOT / "systemd" / service).exists()
    assert f"sudo systemctl restart {service.removesuffix('.service')}" in lines


def invocations() -> list[tuple[str, str, list[str]]]:
    """(the README line, who runs it: "" / "root" / a user, the pibridge command's words)."""
    found = []
    for line in install_block():
        command = line.split("&&")[-1].strip()
        match = re.fullmatch(r"(sudo -u (\S+) |sudo )?pibridge (.+)", command)
        if match:
            who = match.group(2) or ("root" if match.group(1) else "")
            found.append((line, who, match.group(3).split()))
    return found


def test_commands_that_read_the_config_run_as_a_user_who_may_read_it():
    """install.sh writes the config 0640 root:<service user>: only root and that user can read it."""
    from pibridge.cli import TAKES_CONFIG

    script = (ROOT / "install.sh").read_text(encoding="utf-8")
    assert re.search(r'install -m 0640 "\$SCRIPT_DIR/examples/config\.toml" "\$\(at "\$CONF"\)"', script)
    assert 'ensure_owner "$CONF" root "$SERVICE_USER"' in script
    user = install_script_value("SERVICE_USER")
    assert {words[0] for _, _, words in invocations()} >= {"check", "status"}
    for line, who, words in invocations():
        if words[0] in TAKES_CONFIG:
            assert who in ("root", user), f"{line!r}: the config is 0640 root:{user}; run it with sudo or as {user}"
        if who == user:
            # The GPIO library of the Pi 5 puts its pipes in the working directory.
            assert line.startswith("cd /tmp && "), line


@pytest.mark.parametrize("words", [words for _, _, words in invocations()], ids=" ".join)
def test_each_readme_command_and_its_options_exist(words, capsys):
    from pibridge.cli import COMMANDS, main

    name, options = words[0], [w for w in words[1:] if w.startswith("-")]
    assert name in COMMANDS, words
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    for option in options:
        assert re.search(rf"(^|\s|\[){re.escape(option)}\b", usage), f"pibridge {name} has no option {option}"


# --- the driver example in docs/drivers.md is a working driver ------------------------------------

def test_the_example_driver_registers_validates_and_reads(monkeypatch):
    import pibridge.drivers as drivers
    from pibridge.readings import UNITS

    monkeypatch.setattr(drivers, "_registry", dict(drivers._registry))
    example = section(DRIVERS, 2, "Writing a driver").split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/drivers.md", "exec"), {"__name__": "docs_example"})
    name = re.search(r'name = "(\w+)"', example).group(1)
    cls = driver_class(name)
    driver = drivers.create(name, "Bed 1", {"pin": 4})
    with pytest.raises(drivers.OptionError):
        drivers.create(name, "Bed 1", {"pin": 4, "pins": 5})
    assert all(q.unit in UNITS for q in driver.quantities())
    driver.open()
    values = driver.read()
    driver.close()
    driver.close()
    assert set(values) == {q.name for q in cls.provides}
    assert driver.resources() == ["gpio:4"]


def test_the_driver_bases_the_docs_name_exist_with_the_named_hooks():
    from pibridge.drivers.i2c._bus import I2CDriver
    from pibridge.drivers.i2c._expander import ExpanderInput
    from pibridge.drivers.i2c._ina import INAMonitor

    text = section(DRIVERS, 2, "Writing a driver")
    assert "`pibridge.drivers.i2c._bus.I2CDriver`" in text and "`i2c._ina.INAMonitor`" in text
    assert "`i2c._expander.ExpanderInput`" in text
    for cls, hooks in ((I2CDriver, ("chip", "addresses", "setup", "measure")),
                       (ExpanderInput, ("pin_labels", "setup", "read_levels"))):
        for hook in hooks:
            assert f"`{hook}" in text and hasattr(cls, hook), f"{cls.__name__}.{hook}"
    assert issubclass(INAMonitor, I2CDriver)
