"""`make bench`: run every benchmark present, each in its own process, and write bench/RESULTS.md —
one table (benchmark, figure, baseline, ratio, target, met?) and the machine it ran on.

    .venv/bin/python bench/run_all.py                    # the full sizes (tens of minutes)
    .venv/bin/python bench/run_all.py --quick            # small sizes, a few minutes
    .venv/bin/python bench/run_all.py --only ingest,e2e  # some of them

Each bench's whole output goes to bench/logs/<name>.log. Databases: every bench uses its own
`lojal_bench_*` database on the machine's PostgreSQL (BENCH_DATABASE_URL's server; else the
embedded one); the Redis benches use BENCH_REDIS_URL (default db 12). A bench that fails is
listed with its exit status and the tail of its log, and the others still run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402


@dataclass
class Bench:
    name: str
    script: str
    full: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    needs_redis: bool = False


BENCHES = [
    Bench("ledger", "ledger.py", [], ["--events", "5000", "--customers", "1000", "--rounds", "4"]),
    Bench("ledger_floor", "ledger_floor.py", [], ["--events", "4000", "--customers", "1000"]),
    Bench("winback", "winback.py", [], ["--customers", "20000"]),
    Bench("widget", "widget.py", ["--floor"], ["--seconds", "3", "--rounds", "2", "--floor"], needs_redis=True),
    Bench("analytics", "analytics.py", [], ["--customers", "20000"]),
    Bench("ingest", "ingest.py", [], ["--seconds", "3", "--rounds", "1"], needs_redis=True),
    Bench("e2e", "e2e.py", [], ["--orders", "100"], needs_redis=True),
    Bench("redemption_storm", "redemption_storm.py", [], ["--attempts", "2"]),
    Bench("burst", "burst.py", [], ["--webhooks", "1000"], needs_redis=True),
]


# --- reading each bench's figures --------------------------------------------------------------

def _num(text: str) -> float:
    return float(text.replace(",", ""))


def rows_from_output(name: str, output: str) -> list[dict]:
    """The bench's RESULT line if it prints one, else its own summary line, as table rows."""
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])["rows"]
    parser = _PARSERS.get(name)
    return parser(output) if parser else []


def _winback(output: str) -> list[dict]:
    m = re.search(r"SUMMARY customers=(\d+) seconds=(\S+) rows/s=(\S+) copy_rows/s=(\S+) ratio=(\S+)", output)
    if not m:
        return []
    seconds, ratio = _num(m[2]), _num(m[5])
    return [harness.row(f"win-back selection, {int(m[1]):,} customers (s)", seconds, target="<= 30 s",
                        met=seconds <= 30),
            harness.row("win-back selection rows/s vs COPY rows/s", _num(m[3]), baseline=_num(m[4]), ratio=ratio,
                        target="ratio >= 0.2", met=ratio >= 0.2)]


def _widget(output: str) -> list[dict]:
    table = dict(re.findall(r"^(baseline|widget /me)\s+([\d,]+)\s", output, re.M))
    m = re.search(r"ratio (\S+) \(target >= (\S+): \w+\); p99 (\S+) ms \(target <= (\S+): \w+\)", output)
    if not m or len(table) < 2:
        return []
    ratio, p99 = _num(m[1]), _num(m[3])
    return [harness.row("widget GET /widget/v1/me requests/s", _num(table["widget /me"]),
                        baseline=_num(table["baseline"]), ratio=ratio, target=f"ratio >= {m[2]}",
                        met=ratio >= _num(m[2])),
            harness.row("widget /me p99 latency (ms)", p99, target=f"<= {m[4]} ms", met=p99 <= _num(m[4]))
            ] + _widget_floor(output, _num(table["baseline"]))


def _widget_floor(output: str, baseline: float) -> list[dict]:
    """--floor: the /me statement + one Redis call under bare Flask (no target: what any /me could reach)."""
    rps = re.search(r"^floor\s+([\d,]+)\s", output, re.M)
    m = re.search(r"^floor \(.*\): ratio (\S+), p99 (\S+) ms", output, re.M)
    if not rps or not m:
        return []
    return [harness.row("widget floor: the /me SQL + one Redis call, constant answer, requests/s", _num(rps[1]),
                        baseline=baseline, ratio=_num(m[1]), note=f"p99 {m[2]} ms")]


def _analytics(output: str) -> list[dict]:
    m = re.search(r"^SUMMARY (.*)$", output, re.M)
    if not m:
        return []
    timings = {k: float(v.rstrip("s")) for k, v in (pair.split("=") for pair in m[1].split())}
    base = timings.pop("baseline", None)
    return [harness.row(f"analytics {name.replace('_', ' ')} (s)", seconds, baseline=base,
                        ratio=round(seconds / base, 2) if base else None) for name, seconds in timings.items()]


_PARSERS = {"winback": _winback, "widget": _widget, "analytics": _analytics}


# --- the machine ---------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    info = {"CPU": cpu, "cores": str(os.cpu_count()), "RAM": f"{mem_kb / 2**20:.1f} GiB" if mem_kb else "?",
            "OS": platform.platform(), "Python": platform.python_version(),
            "PostgreSQL": _postgres_version(), "Redis": _redis_version(),
            "load average at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT, capture_output=True, text=True)
    if commit.returncode == 0:
        info["commit"] = commit.stdout.strip()
    return info


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _postgres_version() -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(harness.bench_server())
    with engine.connect() as conn:
        version = conn.scalar(text("SHOW server_version"))
    engine.dispose()
    return version


def _redis_version() -> str:
    import redis

    try:
        client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL") or harness.DEFAULT_REDIS_URL)
        return client.info()["redis_version"]
    except redis.RedisError as exc:
        return f"not reachable ({type(exc).__name__})"


# --- running ---------------------------------------------------------------------------------------

def child_environment(bench: Bench, server: str) -> dict[str, str]:
    """Each bench on its own `lojal_bench_*` database of the same server."""
    from sqlalchemy.engine import make_url

    env = {**os.environ}
    own = make_url(server).set(database=f"lojal_bench_{bench.name}").render_as_string(hide_password=False)
    env["DATABASE_URL"] = own  # ledger, winback, analytics read DATABASE_URL (and keep "bench" in the name)
    if bench.name == "widget":
        env["BENCH_DATABASE_URL"] = own
    else:
        env["BENCH_DATABASE_URL"] = server
    return env


def run(bench: Bench, quick: bool, server: str, logs: Path) -> tuple[list[dict], str]:
    log = logs / f"{bench.name}.log"
    command = [sys.executable, str(BENCH / bench.script), *(bench.quick if quick else bench.full)]
    print(f"== {bench.name}: {' '.join(command[1:])}  (log: {log.relative_to(harness.ROOT)})", flush=True)
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.run(command, cwd=harness.ROOT, env=child_environment(bench, server),
                                 stdout=out, stderr=subprocess.STDOUT, text=True)
    output = log.read_text()
    seconds = time.monotonic() - started
    rows = rows_from_output(bench.name, output)
    if process.returncode != 0 or not rows:
        tail = " / ".join(line.strip() for line in output.strip().splitlines()[-2:])[:300]
        rows.append(harness.row("(run)", f"exit {process.returncode}", met=False,
                                note=f"no figures or a failure after {seconds:.0f} s: {tail}"))
    for r in rows:
        print(f"   {r['figure']}: {r['value']}" + (f" vs {r['baseline']}" if r["baseline"] is not None else "")
              + (f" -> ratio {r['ratio']}" if r["ratio"] is not None else ""), flush=True)
    return rows, f"{seconds:.0f} s"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def write_results(path: Path, results: list[tuple[Bench, list[dict], str]], info: dict[str, str], quick: bool) -> None:
    lines = ["# Benchmark results", "",
             f"Written by `make bench` (`bench/run_all.py{' --quick' if quick else ''}`); each figure is measured "
             "against its baseline in the same run. Full output: `bench/logs/<benchmark>.log`.", "",
             "| benchmark | figure | value | baseline | ratio | target | met? | notes |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for bench, rows, took in results:
        for r in rows:
            met = {True: "yes", False: "**no**", None: ""}[r["met"]]
            lines.append(f"| {bench.name} | {_cell(r['figure'])} | {_cell(r['value'])} | {_cell(r['baseline'])} | "
                         f"{_cell(r['ratio'])} | {_cell(r['target'])} | {met} | {_cell(r['note'])} |")
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in info.items()]
    lines += ["", "Run times: " + ", ".join(f"{bench.name} {took}" for bench, _, took in results), ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"))
    args = parser.parse_args(argv)

    wanted = set(args.only.split(",")) if args.only else None
    benches = [b for b in BENCHES if (BENCH / b.script).exists() and (wanted is None or b.name in wanted)]
    server = harness.bench_server()
    info = machine()
    logs = BENCH / "logs"
    logs.mkdir(exist_ok=True)
    results = []
    for bench in benches:
        if bench.needs_redis and info["Redis"].startswith("not reachable"):
            results.append((bench, [harness.row("(not run)", "no Redis", note="set BENCH_REDIS_URL")], "0 s"))
            continue
        results.append((bench, *run(bench, args.quick, server, logs)))
    write_results(Path(args.output), results, info, args.quick)
    print(f"wrote {args.output}")
    return 0 if all(r["met"] is not False for _, rows, _ in results for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
