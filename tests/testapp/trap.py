"""A module that nothing imports: job rows and task results name ``tests.testapp.trap.TrapJob``
to show that Quebec never imports what a row names. Importing it leaves a trace, the file
named by the ``TRAP_MARKER`` environment variable."""

import os
from pathlib import Path

import quebec

if os.environ.get("TRAP_MARKER"):
    Path(os.environ["TRAP_MARKER"]).write_text(f"imported by process {os.getpid()}\n")


class TrapJob(quebec.BaseClass):
    def perform(self):
        pass
