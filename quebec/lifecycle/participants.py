"""Participants: what takes part in a job's transitions, inside their transaction.

A participant's writes commit or roll back with the state change they belong to. Each method
receives the whole batch changing state and returns at once for jobs it has no part in, so a
job class that uses none of them pays nothing. Concurrency keys and queue limits
(``quebec.lifecycle.concurrency``) and unique keys (``quebec.lifecycle.unique``) and batches
(``quebec.lifecycle.batches``) are the participants today.
"""


class Participant:
    """Override the hooks a participant needs; each is called inside the transition's transaction."""

    def concerns(self, jobs):
        """Whether the end of these jobs' runs needs this participant. When no participant is
        concerned, a batch of successful runs is recorded without any of them (on PostgreSQL,
        with the next claim, as one statement)."""
        return False

    def enqueue(self, placement, using):
        """New jobs (``placement.jobs``, unsaved) are about to be written: skip those that must
        not be (``placement.skip``). Runs before ``admit``, which then sees only the others."""

    def admit(self, placement, using):
        """Due jobs are about to be ready (``placement.ready``): move those that may not run yet
        to ``placement.blocked``, or discard them (``placement.discard``)."""

    def claim_gate(self, using):
        """A gate for claims (see ``Operations.claim``), or None when this participant does not
        limit what may be claimed."""
        return None

    def ended(self, jobs, using):
        """Runs of ``jobs`` ended, whatever their outcome: give back what they held."""

    def started(self, job, using):
        """A worker began a run of ``job`` (outside any transaction: the run is not undone)."""

    def done(self, jobs, using):
        """``jobs`` will not run again: they finished, were discarded (by their run, an operator
        or on their way into line) or failed for good. Called besides ``ended`` for those that
        ran, and without it for those that never did."""

    def revived(self, jobs, using):
        """Jobs that had failed for good are back in line (an operator retried them): they will
        run again after all."""

    def released(self, jobs, using):
        """Claims of ``jobs`` went back to ready without running (their process stopped or died)."""

    def withdrawn(self, jobs, using):
        """Ready ``jobs`` left the line without being claimed (cancelled): give back what
        being ready holds."""


_participants = []


def register(participant):
    """Add a participant to every transition from now on; returns it."""
    _participants.append(participant)
    return participant


def unregister(participant):
    _participants.remove(participant)


def registered():
    return _participants
