"""Engine speed and memory: classify N generated rows vs. pandas.read_csv of the same rows.

Run by hand:  .venv/bin/python benchmarks/bench_engine.py [--rows 1000000]
Target (issue #2): classify within 3x of the read_csv time, under 2 GB peak memory.
Each measurement runs in a fresh process so peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

INDUSTRIES = ["Law firm", "Design studio", "Insurance agency", "Accounting firm",
              "Real estate agency", "Marketing agency", "SaaS", "Retail store",
              "Subscription box", "Bank", "Restaurant", "Amusement park", "Consulting", ""]
OFFERINGS = ["Tax advice", "Shoes", "Software subscription plus implementation consulting",
             "Checking account", "Brand identity design", "Season pass", "Groceries",
             "Commercial litigation", "Dinner", "Campaign strategy", "Dashboard seats", ""]
PAYMENTS = ["Monthly retainer", "Hourly", "Fixed fee", "One-time purchase",
            "Annual membership", "Monthly subscription", "Cash", "Commission", ""]
PERSONAL = ["Tailored", "Standard", "Bespoke", "medium", "", "yes", "no"]
YESNO = ["yes", "no", "Y", "N", "", "TRUE", "maybe"]
PRICE = ["Price", "Value", ""]


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    """Realistic account data: 13 columns as analysts write them."""
    rng = np.random.default_rng(seed)

    def pick(values: list[str]) -> np.ndarray:
        return np.asarray(values, dtype=object)[rng.integers(0, len(values), rows)]

    def number(high: int, blank: float = 0.1) -> np.ndarray:
        values = rng.integers(0, high, rows).astype(object)
        values[rng.random(rows) < blank] = ""
        return values

    return pd.DataFrame({
        "Account": [f"Account {i}" for i in range(rows)],
        "Industry": pick(INDUSTRIES),
        "Service type": pick(OFFERINGS),
        "Billing": pick(PAYMENTS),
        "Tenure (months)": number(240),
        "Orders / year": number(60),
        "Personalization": pick(PERSONAL),
        "Needs advice": pick(YESNO),
        "Contacts per month": number(12),
        "Personal use": pick(YESNO),
        "Days to decide": number(90),
        "Price or value": pick(PRICE),
        "Referrals": number(6, 0.5),
    })


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss can carry the parent's peak)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def child(mode: str, path: str) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = {"read_s": time.perf_counter() - t0, "read_cpu": time.process_time() - c0,
           "rows": len(frame)}
    if mode == "classify":
        from relationships import classify

        t1, c1 = time.perf_counter(), time.process_time()
        result = classify(frame, as_of="2026-11-22")
        out["classify_s"] = time.perf_counter() - t1
        out["classify_cpu"] = time.process_time() - c1
        out["clients"] = int((result["relationship_type"] == "Client").sum())
    out["peak_mb"] = peak_mb()
    print(json.dumps(out))


def run(mode: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accounts.csv"
        generate(args.rows).to_csv(path, index=False)
        read = run("read", path)
        cls = run("classify", path)
    ratio = cls["classify_s"] / read["read_s"]
    cpu_ratio = cls["classify_cpu"] / read["read_cpu"]
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, pandas {pd.__version__}")
    print("| rows | read_csv (s) | classify (s) | classify rows/s | classify / read | "
          "CPU: read / classify / ratio | peak MB (read only) | peak MB (read + classify) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.rows:,} | {read['read_s']:.2f} | {cls['classify_s']:.2f} | "
          f"{args.rows / cls['classify_s']:,.0f} | {ratio:.2f}x | {read['read_cpu']:.2f} s / "
          f"{cls['classify_cpu']:.2f} s / {cpu_ratio:.2f}x | {read['peak_mb']:.0f} | "
          f"{cls['peak_mb']:.0f} |")
    print(f"target: classify / read <= 3x -> {'met' if ratio <= 3 else 'NOT met'}; "
          f"peak < 2048 MB -> {'met' if cls['peak_mb'] < 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
