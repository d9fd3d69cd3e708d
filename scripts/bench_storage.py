"""Workers started at once on an empty PostgreSQL database, and 8 workers on one study.

``start``: N processes open the storage and create-or-load one study at the same instant (a
shared start time), on a fresh empty database each round, in three ways: Optuna's plain
``RDBStorage``; autoinit's retries alone (``patiently``, no lock); retries plus the advisory
lock around table creation (what ``open_storage`` does). Counts failures, attempts and the time
to open.

``load``: ``--workers`` CLI searches (one torch thread each) started together on one empty
PostgreSQL study of tiny trials: exit codes, the exact trial count, trials per hour over the
trial phase, the most connections open at once (``pg_stat_activity``, sampled every 0.2 s) and
transactions per finished trial (``pg_stat_database``: every storage call is one transaction,
a round trip or more).

``restart``: 2 workers (``tests/distributed_worker.py``) on one study; once both run a trial
PostgreSQL is stopped for 3 s and started again. Once with ``AUTOINIT_STORAGE_PATIENCE=0`` (no
retries: the storage as it was before) and once with the default 60 s: exit codes, finished,
failed and stuck trials.

    python scripts/bench_storage.py start --workers 8 --repeats 5
    python scripts/bench_storage.py load --workers 8 --n-trials 48
    python scripts/bench_storage.py restart
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import optuna
import psycopg
from optuna.trial import TrialState

from autoinit.testing import PostgresServer

REPO = Path(__file__).resolve().parents[1]
OPENER = """
import json, sys, time, optuna, warnings
from autoinit import storage as s
url, mode, at = sys.argv[1], sys.argv[2], float(sys.argv[3])
warnings.simplefilter("ignore")
attempts = 0
def build():
    global attempts
    attempts += 1
    if mode == "plain":
        return optuna.storages.RDBStorage(url, heartbeat_interval=10)
    return s.rdb_storage(url, {"pool_pre_ping": True}, lock=mode == "lock+retry")
time.sleep(max(0.0, at - time.time()))
t0 = time.time()
try:
    storage = build() if mode == "plain" else s.patiently(build, url, opening=True)
    try:
        optuna.create_study(storage=storage, study_name="race")
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        optuna.load_study(storage=storage, study_name="race")
        created = False
    print(json.dumps({"ok": True, "attempts": attempts, "seconds": time.time() - t0,
                      "created": created}))
except Exception as exc:
    print(json.dumps({"ok": False, "attempts": attempts, "seconds": time.time() - t0,
                      "error": type(exc).__name__ + ": " + str(exc).splitlines()[0][:160]}))
"""
STUDY = """
[model]
factory = "autoinit.tasks.mlp:deep_relu_mlp"
kwargs = {{ depth = 3, width = 16 }}
[data]
factory = "autoinit.tasks.digits:digits_data"
kwargs = {{ batch_size = 32 }}
[train]
loss = "cross_entropy"
[search]
n_trials = {n_trials}
probe_steps = {probe_steps}
[mlflow]
enabled = false
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def fresh_database(server: PostgresServer, name: str) -> str:
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def start(args: argparse.Namespace) -> dict:
    report: dict = {}
    with PostgresServer() as server:
        for mode in ("plain", "retry only", "lock+retry"):
            rows = []
            for r in range(args.repeats):
                url = fresh_database(server, f"start_{mode.replace(' ', '_').replace('+', '_')}_{r}")
                at = time.time() + 4.0  # every process imported and waiting by then
                procs = [subprocess.Popen([sys.executable, "-c", OPENER, url, mode, str(at)],
                                          stdout=subprocess.PIPE, text=True, env=env())
                         for _ in range(args.workers)]
                rows += [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
            ok = [row for row in rows if row["ok"]]
            report[mode] = {
                "workers": args.workers * args.repeats,
                "failed": len(rows) - len(ok),
                "errors": sorted({row["error"][:120] for row in rows if not row["ok"]}),
                "creators_per_round": sum(row.get("created", False) for row in ok) / args.repeats,
                "retried_workers": sum(row["attempts"] > 1 for row in ok),
                "attempts_max": max((row["attempts"] for row in rows), default=0),
                "open_seconds_median": statistics.median(row["seconds"] for row in ok) if ok else None,
                "open_seconds_max": max((row["seconds"] for row in ok), default=None),
            }
            print(mode, json.dumps(report[mode]), flush=True)
    return report


def load(args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="autoinit-load-"))
    study_file = folder / "tiny.toml"
    study_file.write_text(STUDY.format(n_trials=args.n_trials, probe_steps=args.probe_steps))
    with PostgresServer() as server:
        url = fresh_database(server, "load")
        peak = {"connections": 0}
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(server.url, autocommit=True) as conn:
                while not stop.wait(0.2):
                    n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'load'"
                                     ).fetchone()[0]
                    peak["connections"] = max(peak["connections"], n)

        def transactions() -> int:
            with psycopg.connect(server.url, autocommit=True) as conn:
                return conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                    "WHERE datname = 'load'").fetchone()[0]

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        before = transactions()
        t0 = time.time()
        procs = [subprocess.Popen([sys.executable, "-m", "autoinit", "search", str(study_file),
                                   "--storage", url, "--study-name", "load", "--out",
                                   str(folder / f"s{i}.json")], env=env(), cwd=folder,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(args.workers)]
        errors = [p.communicate()[1] for p in procs]
        wall = time.time() - t0
        stop.set()
        sampler.join()
        time.sleep(1.5)  # pg_stat_database is updated by the backends within a second or so
        spent = transactions() - before
        trials = optuna.load_study(study_name="load", storage=url).get_trials(deepcopy=False)
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        hours = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
                 ).total_seconds() / 3600
        report = {
            "workers": args.workers, "n_trials": args.n_trials, "probe_steps": args.probe_steps,
            "exit_codes": [p.returncode for p in procs],
            "stderr_tails": [e.strip().splitlines()[-1] for e in errors if e.strip()],
            "finished": len(done), "running_left": sum(t.state == TrialState.RUNNING for t in trials),
            "failed": sum(t.state == TrialState.FAIL and not t.user_attrs.get("surplus")
                          for t in trials),
            "surplus_not_run": sum(bool(t.user_attrs.get("surplus")) for t in trials),
            "trials_per_hour": len(done) / hours, "wall_seconds": wall,
            "peak_connections": peak["connections"],
            "transactions_per_finished_trial": spent / len(done),
        }
    print(json.dumps(report, indent=2))
    return report


def restart(args: argparse.Namespace) -> dict:
    report = {}
    worker = str(REPO / "tests" / "distributed_worker.py")
    with PostgresServer() as server:
        for patience in ("0", "60"):
            url = fresh_database(server, f"restart_{patience}")
            env_ = {**env(), "AUTOINIT_STORAGE_PATIENCE": patience, "AUTOINIT_HEARTBEAT_INTERVAL": "1",
                    "AUTOINIT_GRACE_PERIOD": "10"}
            procs = [subprocess.Popen([sys.executable, worker, url, "restart", "16", "60"], env=env_,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    trials = optuna.load_study(study_name="restart", storage=url).trials
                    if sum(t.state == TrialState.RUNNING for t in trials) >= 2 and len(trials) >= 8:
                        break
                except KeyError:
                    pass
                time.sleep(0.2)
            server.stop()
            time.sleep(3.0)
            server.start()
            errors = [p.communicate()[1] for p in procs]
            trials = optuna.load_study(study_name="restart", storage=url).trials
            report[f"patience {patience} s"] = {
                "exit_codes": [p.returncode for p in procs],
                "last_stderr_lines": [e.strip().splitlines()[-1][:200] for e in errors if e.strip()],
                "finished": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
                "asked_for": 16,
                "failed": sum(t.state == TrialState.FAIL for t in trials),
                "running_or_waiting": sum(t.state in (TrialState.RUNNING, TrialState.WAITING)
                                          for t in trials),
            }
            print(json.dumps(report[f"patience {patience} s"]), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["start", "load", "restart"])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-trials", type=int, default=48)
    parser.add_argument("--probe-steps", type=int, default=6)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()
    run = {"start": start, "load": load, "restart": restart}[args.what]
    report = {"what": args.what, **run(args),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count(),
              "optuna": optuna.__version__}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
