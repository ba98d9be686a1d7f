"""Prometheus counters of the OTA family: checks by errno, reports by result, bytes sent."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter


class OtaCounters:
    """Counted per process (each worker's ``/metrics`` shows its own, as Prometheus expects)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.checks = Counter(
            "cloudlet_ota_checks", "OTA task checks by answer errno", ["errno"], registry=registry
        )
        self.reports = Counter(
            "cloudlet_ota_reports",
            "OTA result codes reported (report and progress APIs) by code and answer errno",
            ["result", "errno"],
            registry=registry,
        )
        self.download_bytes = Counter(
            "cloudlet_ota_download_bytes", "Package bytes sent to devices", registry=registry
        )
        # prometheus_client validates and locks in every labels() call (2 % of a check).
        self._checks_by_errno: dict[int, Any] = {}

    def count_check(self, errno: int) -> None:
        """One check answered with ``errno`` (one of the protocol's few)."""
        child = self._checks_by_errno.get(errno)
        if child is None:
            child = self._checks_by_errno[errno] = self.checks.labels(str(errno))
        child.inc()
