"""The DIANNE engine: modules, the network format, weights, repository, execution, datasets.

Pure numpy (cupy only through ``engine.backends``, on request). Imports nothing above it: no Qt,
no ZeroMQ, no zeroconf.
"""

from __future__ import annotations

__version__ = "0.1.0"
