"""One-line log output for the command line and the server, bounded in lines and in memory.

``xlm-onnx: LEVEL: message`` on stderr, with three bounds:

* **Once per message** (warnings and below): fill-mask calls the API once per chunk, and its
  warnings (a target outside the vocabulary) would otherwise repeat for every chunk. What was
  printed is remembered as 16-byte digests in a :class:`~xlm_onnx._lru.ByteLRU` (1 MiB), not as
  the messages: 50,000 distinct targets per request must not grow memory without end.
* **At most** ``burst`` **lines per call site** (logger, level, format string) per ``interval``
  seconds; the rest are counted, and one line says how many, with the last of them formatted
  (``... 49,995 more like this in the last 60 s, the last: target 'zzq' is not in the vocabulary
  ...``) when the window ends (at the next record, or when logging shuts down). A request with
  50,000 unknown targets logs 5 lines, not 4.6 MB. Past the burst a record is only counted and
  kept as the window's last (not formatted, hashed or remembered): a flood costs little, and
  only the one record the summary shows is formatted.
* **Errors are never hidden**: repeats of an error are not dropped as seen, they are counted in
  that summary line. A server counts repeated warnings too (``count_repeats``: 1,000 invalid
  HTTP requests are one line and a count, not one line); a command prints a warning once.

Tracebacks (``exc_info``) are printed only when the record's logger is enabled for DEBUG
(``--log-level debug``); otherwise the exception's type and message are already in the line.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import sys
import time
import traceback
from dataclasses import dataclass

from ._lru import ByteLRU

SEEN_BYTES = 1 << 20
SITES_BYTES = 256 << 10


@dataclass
class _Window:
    start: float
    printed: int = 0
    suppressed: int = 0
    last: logging.LogRecord | None = None  # the last record counted, formatted by the summary


class OneLineLog(logging.Handler):
    """A handler for the ``xlm_onnx`` logger (see the module docstring).

    Args:
        burst: Lines per call site per window.
        interval: Window length in seconds.
        stream: Where lines go (default: ``sys.stderr`` at the time of each line).

    Attributes:
        json: Write each line as a JSON object (``time``, ``level``, ``message``, ``traceback``).
        count_repeats: Count repeats of a printed warning in the summary line (a server) instead of
            dropping them (a command, where the same warning comes once per chunk).
    """

    def __init__(self, burst: int = 5, interval: float = 60.0, stream=None) -> None:
        super().__init__()
        self.burst, self.interval, self.stream = burst, interval, stream
        self.count_repeats = False
        self.json = False  # one JSON object a line (serve --log-format json)
        self.seen = ByteLRU(SEEN_BYTES, lambda key, value: 33 + len(key))
        self.sites = ByteLRU(SITES_BYTES, lambda key, value: 200 + len(key[2]))
        self._swept = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            now = time.monotonic()
            self._close_windows(now)
            site = (record.name, record.levelno, str(record.msg)[:200])
            window = self.sites.get(site)
            if window is not None and window.printed >= self.burst:  # a flood: count it, nothing else
                window.suppressed += 1
                window.last = record
                return
            message = " ".join(record.getMessage().split())
            if record.levelno < logging.ERROR:
                digest = hashlib.blake2b(message.encode("utf-8", "replace"), digest_size=16).digest()
                if digest in self.seen:
                    self.seen.get(digest)  # most recently used again
                    if self.count_repeats and window is not None:
                        window.suppressed += 1
                        window.last = record
                    elif self.count_repeats:
                        self.sites.put(site, _Window(now, suppressed=1, last=record))
                    return
                self.seen.put(digest, True)
            if window is None:
                window = _Window(now)
                self.sites.put(site, window)
            window.printed += 1
            trace = None
            if record.exc_info and logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                trace = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self._write(record.levelname.lower(), message, trace)
        except Exception:  # noqa: BLE001 - logging must never take the program down
            self.handleError(record)

    def _close_windows(self, now: float) -> None:
        """Prints the count of what each ended window held back, and forgets the window (looks at
        most once a second: a sweep visits every call site)."""
        if now - self._swept < min(1.0, self.interval):
            return
        self._swept = now
        for site, window in self.sites.items():
            if now - window.start >= self.interval:
                self._summary(site, self.sites.pop(site), now)

    def _summary(self, site: tuple, window: _Window, now: float) -> None:
        if window.suppressed:
            name, level, msg = site
            seconds = max(1, round(now - window.start))
            try:
                last = window.last.getMessage() if window.last is not None else msg
            except Exception:  # noqa: BLE001 - arguments that do not fit the format: show the format
                last = msg
            which = ":" if last == msg else ", the last:"  # the same line again, or one of a kind
            self._write(logging.getLevelName(level).lower(), f"{window.suppressed:,} more like this in the last "
                        f"{seconds} s{which} {' '.join(last.split())}")

    def _write(self, level: str, message: str, trace: str | None = None) -> None:
        if self.json:
            record = {"time": utc_now(), "level": level, "message": message, **({"traceback": trace} if trace else {})}
            line = json.dumps(record, ensure_ascii=False)
        else:
            line = f"xlm-onnx: {level}: {message}" + (f"\n{trace}" if trace else "")
        print(line, file=self.stream or sys.stderr, flush=True)

    def flush(self) -> None:
        """Prints the counts still held back, and starts new windows."""
        now = time.monotonic()
        for site, window in self.sites.items():
            self._summary(site, window, now)
        self.sites.clear()

    def close(self) -> None:
        """Prints the counts still held back (``logging.shutdown`` calls this at exit)."""
        try:
            self.flush()
        finally:
            super().close()


def utc_now() -> str:
    """The time of a JSON log line: ISO 8601, UTC, milliseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def flush_all(*logger_names: str) -> None:
    """Flushes the :class:`OneLineLog` of each logger: a server killed by its signal after its
    shutdown never reaches ``logging.shutdown``."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, OneLineLog):
                handler.flush()


def install(logger_name: str = "xlm_onnx") -> OneLineLog:
    """Routes ``logger_name``'s records to one :class:`OneLineLog` (once per process)."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, OneLineLog):
            return handler
    handler = OneLineLog()
    logger.addHandler(handler)
    logger.propagate = False
    return handler
