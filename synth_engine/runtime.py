"""Small runtime helpers for jobs: peak-memory sampling and library versions."""

from __future__ import annotations

import threading
from importlib import metadata

import psutil

LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn", "torch", "opacus", "mbi", "jax")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class PeakMemory:
    """Sample this process's resident set size in a background thread; keep the peak.

    ``ru_maxrss`` would give the peak of the whole worker's life, not of one job.
    """

    def __init__(self, interval_seconds: float = 0.2) -> None:
        self.interval_seconds = interval_seconds
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-memory")

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self._sample()

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
