"""``rc-update``, the car's agent: follows ``models:/<name>@<alias>`` on the team's MLflow server,
downloads the version's signed bundle into staging, verifies it, and swaps ``ROOT/current`` only
while the car is parked (the runtime's state file, runtime/state_file.py).

Car side: Python 3.10, stdlib HTTP to MLflow's REST API (no mlflow, no mlflow-skinny: skinny still
pulls protobuf, sqlparse, gitpython, opentelemetry and more onto the car for a handful of GET/POSTs).

- :mod:`runtime.update.registry`: the REST calls (alias, version, artifacts, download, set-tag);
- :mod:`runtime.update.layout`: ROOT's folders, the ``current`` symlink, history, pruning, rollback;
- :mod:`runtime.update.parked`: whether the runtime lets a swap happen now;
- :mod:`runtime.update.agent`: one update pass and its outcome (exit code + one line);
- :mod:`runtime.update.cli`: the command line and the polling loop.
"""
