"""Where long jobs report their sub-steps: the candidates of a search, the refits, each at INFO
on one logger.

The library only logs; what is shown is the caller's choice. The command line shows the
messages in its progress display while a job runs (``cli.options.progress``: a live bar in a
terminal, a timed line each in a log file or CI); a library user who wants them attaches a
handler to :data:`PROGRESS_LOGGER`. Without one nothing is printed (INFO is below Python's
default level).
"""

from __future__ import annotations

import logging

PROGRESS_LOGGER = "icans.progress"
progress_log = logging.getLogger(PROGRESS_LOGGER)
