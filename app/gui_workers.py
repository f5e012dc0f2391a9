"""Background work for the desktop app: file and network work never runs on the GUI thread.

``Workers.start(fn, *args, on_done=..., on_error=..., label=...)`` runs ``fn`` on Qt's global
thread pool; the result (or the error message) comes back to the GUI thread through a queued
signal. ``busy_changed(count, label)`` drives the status bar's progress indicator, and tests
wait on :meth:`Workers.wait_idle`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtWidgets

from engine.errors import DianneError

log = logging.getLogger(__name__)


class _Signals(QtCore.QObject):
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)


class _Task(QtCore.QRunnable):
    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python side keeps it until its signal arrived
        self.fn, self.args = fn, args
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn(*self.args)
        except DianneError as exc:
            self.signals.failed.emit(" ".join(str(exc).split()))
        except OSError as exc:
            name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            self.signals.failed.emit(f"{name}{exc.strerror or exc}")
        except Exception as exc:  # a bug: report it, do not kill the worker thread silently
            log.error("background task failed:\n%s", traceback.format_exc())
            self.signals.failed.emit(f"internal error: {type(exc).__name__}: {exc}")
        else:
            self.signals.done.emit(result)


class Workers(QtCore.QObject):
    busy_changed = QtCore.Signal(int, str)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QtCore.QThreadPool.globalInstance()
        self._running: set[_Task] = set()

    @property
    def busy(self) -> int:
        return len(self._running)

    def start(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
              on_error: Callable[[str], None], label: str = "working") -> None:
        task = _Task(fn, args)

        def finish(callback: Callable[[Any], None], value: Any) -> None:
            self._running.discard(task)
            self.busy_changed.emit(self.busy, "")
            callback(value)

        task.signals.done.connect(lambda v: finish(on_done, v))
        task.signals.failed.connect(lambda m: finish(on_error, m))
        self._running.add(task)
        self.busy_changed.emit(self.busy, label)
        self.pool.start(task)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Process events until no task runs (for screenshots and tests)."""
        timer = QtCore.QElapsedTimer()
        timer.start()
        while self._running and timer.elapsed() < timeout_s * 1000:
            QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents,
                                                 50)
            self.pool.waitForDone(10)
        QtWidgets.QApplication.processEvents()
        return not self._running
