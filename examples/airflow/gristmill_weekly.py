"""Airflow DAG: a weekly gristmill refresh, the four steps of examples/cron/weekly_refresh.sh as
tasks, so each one shows, retries and logs on its own.

    plan ──► (nothing new? skip the rest) ──► build ──► validate ──► promote

- plan: `gristmill refresh RELEASES/latest --dry-run --json` lists the inputs a release of the
  lineage has not read yet (same path, size and sha256 are skipped); no new file, no release;
- build: the refresh itself (the parent's configuration, sources aside); a retry resumes it;
- validate: `gristmill validate` checks every file against the new manifest;
- promote: RELEASES/latest, a relative symlink, moved by one atomic rename.
The first run, before any `latest` exists, runs JOB instead of a refresh.

Copy this file into the DAGs folder and set GRISTMILL_RELEASES, GRISTMILL_INBOX,
GRISTMILL_KIND, GRISTMILL_JOB and GRISTMILL_BIN in the scheduler's and workers' environment (or
edit the defaults below). The PII salt comes from the workers' environment too
(GRISTMILL_PII_SALT, named by reference in the job file), never from the DAG.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import ShortCircuitOperator

RELEASES = os.environ.get("GRISTMILL_RELEASES", "/srv/releases")
INBOX = os.environ.get("GRISTMILL_INBOX", "/srv/inbox")
KIND = os.environ.get("GRISTMILL_KIND", "articles")
JOB = os.environ.get("GRISTMILL_JOB", "/srv/corpus/job.yaml")
BIN = os.environ.get("GRISTMILL_BIN", "gristmill")
STAMP = "{{ ds }}"  # the logical date names the release: reruns of a week write the same one
OUT = f"{RELEASES}/{STAMP}"
PLAN = f"{RELEASES}/.plan-{STAMP}.json"

# refresh the latest release when there is one, else the first release from JOB
JOB_ARGS = (
    f'$( [ -e {RELEASES}/latest/manifest.json ] && echo "refresh {RELEASES}/latest" '
    f'|| echo "run {JOB}" ) --source {KIND}={INBOX} --output {OUT}'
)


def has_new_inputs(plan: str) -> bool:
    """ShortCircuit: the rest runs only when the plan found files no release has read."""
    with open(plan, encoding="utf-8") as fh:
        files = json.load(fh)["inputs"]["files"]
    print(f"{files} new input file(s)")
    return files > 0


with DAG(
    dag_id="gristmill_weekly_refresh",
    description="new inputs since the last release -> refresh -> validate -> move latest",
    schedule="0 3 * * 1",
    start_date=datetime(2026, 1, 5),
    catchup=False,
    max_active_runs=1,  # one job at a time holds an output
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["gristmill"],
) as dag:
    plan = BashOperator(
        task_id="plan",
        bash_command=f"mkdir -p {RELEASES} && {BIN} {JOB_ARGS} --dry-run --json {PLAN} --quiet",
    )
    anything_new = ShortCircuitOperator(
        task_id="anything_new", python_callable=has_new_inputs, op_kwargs={"plan": PLAN}
    )
    build = BashOperator(
        task_id="build",
        bash_command=f"{BIN} {JOB_ARGS} --json {RELEASES}/{STAMP}.summary.json --progress plain",
        execution_timeout=timedelta(hours=12),
    )
    validate = BashOperator(task_id="validate", bash_command=f"{BIN} validate {OUT}")
    promote = BashOperator(
        task_id="promote",
        bash_command=(
            f"ln -sfn {STAMP} {RELEASES}/.latest-{STAMP} && "
            f"mv -Tf {RELEASES}/.latest-{STAMP} {RELEASES}/latest"
        ),
    )
    plan >> anything_new >> build >> validate >> promote
