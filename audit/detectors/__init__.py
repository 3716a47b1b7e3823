"""Export detectors, one per module; ``build_detectors`` is the full, ordered registry."""

from __future__ import annotations

from audit.detectors.base import Detector
from audit.detectors.baseline import BaselineDetector
from audit.detectors.config import DetectionConfig
from audit.detectors.crawl import CrawlDetector
from audit.detectors.departing import DepartingDetector
from audit.detectors.first_access import FirstAccessDetector
from audit.detectors.off_hours import OffHoursDetector
from audit.detectors.peer import PeerDetector
from audit.detectors.volume import VolumeDetector


def build_detectors(config: DetectionConfig) -> list[Detector]:
    """Every enabled detector, in the order their findings are reported."""
    d = config.detectors
    candidates: list[tuple[bool, Detector]] = [
        (d.volume.enabled, VolumeDetector(d.volume)),
        (d.crawl.enabled, CrawlDetector(d.crawl)),
        (d.baseline.enabled, BaselineDetector(d.baseline)),
        (d.peer.enabled, PeerDetector(d.peer)),
        (d.off_hours.enabled, OffHoursDetector(d.off_hours, config.working_hours)),
        (d.departing.enabled, DepartingDetector(d.departing)),
        (d.first_access.enabled, FirstAccessDetector(d.first_access)),
    ]
    return [detector for enabled, detector in candidates if enabled]
