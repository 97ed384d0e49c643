"""A job's life: every state change of a job, for a batch of jobs, in one place.

    enqueue ─▶ ready | scheduled | blocked ─▶ claimed ─▶ started ─▶ ended: finished, discarded,
    failed, or back in line (retry, rate limit); claimed jobs may be released back to ready.

Each transition is a function here working on a batch (a batch of one is the slow path), and
the statements behind it come from ``quebec.db.operations``, written per database. Participants
(``participants``) act inside the transition's transaction; subscribers (``events``) hear of it
after the commit. See docs/architecture.md.

    queueing   enqueue, dispatch_due, retry, run_now, unblock, discard, release_expired
    running    claim, start, end, end_and_claim, release, deregister
    outcome    Outcome and Run: how a run ended, and what that writes on its job
    stats      rollups of ended runs per minute, queue and class; their fold and pruning

This package imports no submodule itself: ``quebec`` loads parts of it (``outcome``) before
Django's models are ready.
"""
