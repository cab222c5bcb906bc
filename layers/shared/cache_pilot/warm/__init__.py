"""The warm-up program the CodeBuild job runs: ``python -m cache_pilot.warm``.

It pulls every listed image once through the registry (the ECR pull-through cache), every
selected platform and every blob, verifying digests, and writes a report (``report.py``) for
the finish step. Standard library only, on Python 3.11 or newer: the job runs it from the
shipped layer on the build image's own python3, where pydantic and boto3 may be missing.
"""
