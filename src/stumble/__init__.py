"""stumble: self-hosted, privacy-first UX telemetry for corporate and internal web systems."""

__version__ = "0.1.0"
