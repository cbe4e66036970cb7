"""Follow-up runs (issue 18): refreshing many patients' follow-up, spread over the Celery workers.

The nightly run, an edited protocol re-applied and ``follow_up_refresh`` take the same path:
- ``selection``: which patients a run refreshes, as ids;
- ``starting``: a ``FollowUpRun`` row and its ``FollowUpRunChunk`` rows (ids only), queued once
  committed; the sweep that queues again what a lost message or a killed worker left;
- ``chunks``: a worker claims a chunk under a lease and refreshes its patients, each in a
  transaction of their own that also stores how far the chunk got;
- ``closing``: the run's states; the last chunk to finish closes the run with its counts;
- ``health``: whether last night's run finished, for the health check and the dashboard.
``selection``, ``closing`` and ``health`` read and write rows only; ``starting`` and ``chunks``
build on them, and ``followups.tasks`` on those two.
"""
