"""``python -m app`` is the same as the ``dianne`` command."""

from __future__ import annotations

from app.cli import main

raise SystemExit(main())
