"""The apply journal: every action is written down before it touches a platform.

Lines of JSON in .taoplan/journal.jsonl: intent (service, job_id, action, target), executed, outcome.
A crash leaves the journal saying how far each action got; labels and state say the rest.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taoplan.common import fsutil

JOURNAL_FILE = "journal.jsonl"
ROTATE_BYTES = 4 * 1024 * 1024


class Journal:
    def __init__(self, state_dir: Path, command: str) -> None:
        self.path = state_dir / JOURNAL_FILE
        self.run_id = str(uuid.uuid4())
        self.command = command
        fsutil.ensure_private_dir(state_dir)
        if self.path.exists() and self.path.stat().st_size > ROTATE_BYTES:
            os.replace(self.path, self.path.with_name(JOURNAL_FILE + ".1"))

    def write(self, phase: str, **fields: Any) -> None:
        record = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "run": self.run_id,
            "command": self.command,
            "phase": phase,
            **fields,
        }
        fsutil.append_line(self.path, json.dumps(record, sort_keys=True))
