"""What several benchmarks share: a synthetic nested design, and interleaved timing.

Synthetic data only (labelled as such): effects in sites in sources, with a between-source
and a between-site spread, so the nested models have something to estimate.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ASSUMED = "vi from a reported error read as SE; assumption, not data"


def nested_design(k: int, seed: int = 20261130) -> dict:
    """About ``k`` effects: site and source codes, their random effects ``u``, ``vi`` and
    the generator (so callers draw further columns from the same stream)."""
    rng = np.random.default_rng(seed)
    n_sources = max(1, k // 10)
    sites_per = rng.integers(1, 5, n_sources)
    site_source = np.repeat(np.arange(n_sources), sites_per)
    effects_per = rng.integers(1, 9, len(site_source))
    site = np.repeat(np.arange(len(site_source)), effects_per)[:k]
    source = site_source[site]
    n_sites = int(site.max()) + 1
    u = rng.normal(0, 0.2, n_sources)[source] + rng.normal(0, 0.1, n_sites)[site]
    vi = rng.uniform(0.005, 0.1, len(site))
    yi = 0.05 + u + rng.normal(0, np.sqrt(vi + 0.01))
    return {"site": site, "source": source, "n_sites": n_sites, "yi": yi, "vi": vi, "rng": rng}


def interleaved(calls: dict, repeats: int) -> dict:
    """Median seconds of each named call, the calls taking turns within every repeat."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def time_r(template: str, data, fit_code: str, repeats: int, timeout: float):
    """Median seconds R reports for ``fit_code`` on ``data`` (``template`` formatted with
    ``csv``, ``fit`` and ``repeats``, printing ``MEDIAN s`` or ``ERROR why``), or a short
    text saying why there is no time."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        data.to_csv(csv, index=False)
        script = template.format(csv=csv, fit=fit_code, repeats=repeats)
        try:
            out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                                 timeout=timeout).stdout
        except FileNotFoundError:
            return "no Rscript"
        except subprocess.TimeoutExpired:
            return f"stopped after {timeout:g} s"
    for line in out.splitlines():
        if line.startswith("MEDIAN"):
            return float(line.split()[1])
        if line.startswith("ERROR"):
            return "error: " + line[6:].strip()[:60]
    return "no output (is metafor installed?)"
