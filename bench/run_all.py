"""Run every benchmark and print one table of figures (``make bench``).

    .venv/bin/python bench/run_all.py            # the full set: about 65 minutes
    .venv/bin/python bench/run_all.py --quick    # a few minutes, smaller numbers
    .venv/bin/python bench/run_all.py --only push,outbox --write docs/benchmarks.md

Each benchmark runs as its own process (so one's memory and threads do not
colour the next one's figures), writes its figures as JSON, and this script
prints them together with the date, the machine and the command.  With
``--write PATH`` it also replaces the figures section of PATH (between the
``<!-- figures -->`` markers) with the new table.
"""

from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, machine, table  # noqa: E402

HERE = Path(__file__).resolve().parent

#: name -> (script, extra arguments for a full run, extra arguments for --quick)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "push": ("push_bench.py", [], ["--quick"]),
    "outbox": ("outbox_bench.py", [], ["--quick"]),
    "replay": ("replay_bench.py", [], ["--quick"]),
    "footprint": ("footprint_bench.py", ["--minutes", "30"], ["--quick"]),
    "sdcard": ("sdcard_bench.py", ["--minutes", "5"], ["--quick"]),
    "peer": ("peer_bench.py", [], ["--quick"]),
    "scaling": ("scaling_bench.py", [], ["--quick"]),
    "pi": ("pi_class_bench.py", [], ["--quick"]),
    "features": ("feature_bench.py", [], ["--quick"]),
    "sim": ("sim_bench.py", [], ["--quick"]),
}

BEGIN, END = "<!-- figures -->", "<!-- /figures -->"


def run_bench(name: str, quick: bool, extra: list[str], workdir: Path) -> tuple[list[Figure], str | None]:
    script, full_args, quick_args = BENCHES[name]
    out = workdir / f"{name}.json"
    defaults = quick_args if quick else full_args
    if extra and defaults[:1] == extra[:1]:
        defaults = []  # an explicit --minutes replaces the default one
    cmd = [sys.executable, str(HERE / script), *defaults, *extra, "--json", str(out)]
    print(f"\n=== {name}: {' '.join(shlex.quote(c) for c in cmd[1:])}", flush=True)
    done = subprocess.run(cmd)
    if done.returncode != 0 or not out.exists():
        return [], f"{name} failed with exit code {done.returncode}"
    return [Figure(**f) for f in json.loads(out.read_text())], None


def write_doc(path: Path, text: str) -> None:
    doc = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in doc or END not in doc:
        doc += f"\n{BEGIN}\n{END}\n"
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    parser.add_argument("--write", metavar="PATH", type=Path, help="put the table into PATH (docs/benchmarks.md)")
    parser.add_argument("--minutes", help="passed to the footprint and sdcard benchmarks")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    figures: list[Figure] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pibridge-bench-") as tmp:
        for name in names:
            extra = ["--minutes", args.minutes] if args.minutes and name in ("footprint", "sdcard") else []
            got, failure = run_bench(name, args.quick, extra, Path(tmp))
            figures += got
            if failure:
                failures.append(failure)
    command = "python bench/run_all.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    text = "\n".join([
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}.",
        f"Command: `{command.strip()}`" + (" (quick run: smaller numbers, shorter runs)" if args.quick else ""),
        "",
        table(figures),
    ])
    if failures:
        text += "\n\nNot measured: " + "; ".join(failures)
    print("\n" + text)
    if args.write:
        write_doc(args.write, text)
        print(f"\nwritten to {args.write}")
    missed = [f for f in figures if f.met is False]
    if missed:
        print(f"\n{len(missed)} target(s) not met: " + "; ".join(f"{f.bench}: {f.name}" for f in missed))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
