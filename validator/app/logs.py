# SPDX-License-Identifier: Apache-2.0
"""structlog set-up: readable console lines in a terminal, JSON lines under systemd.

Log events carry serials, outcomes and reason codes; never keys, and never raw APDUs above the
TRAFFIC level (5), where the exchange list of ``readers.channel`` is logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from readers.channel import TRAFFIC

LogFormat = Literal["auto", "console", "json"]

LEVELS = {
    "traffic": TRAFFIC,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(log_format: LogFormat = "auto", level: str = "warning") -> None:
    """Route stdlib and structlog output to stderr in the chosen format."""
    numeric = LEVELS[level]
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        # Tracebacks without local variables: a frame's locals may hold a key.
        else structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(max(numeric, logging.DEBUG)),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
