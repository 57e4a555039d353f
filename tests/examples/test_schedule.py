"""The scheduling examples: the Airflow DAG imports and wires plan >> anything_new >> build >>
validate >> promote; the cron recipe is valid shell. `examples/check_schedule.sh` runs the
recipe for real (twice on sample/, then once with nothing new); it is its own make target.

Airflow is not a dependency of gristmill. When it is installed the DAG is imported as Airflow
would; when not, under a minimal stub of the three names it uses, which records the tasks and
the `>>` edges: that checks the file runs, the task ids and order and the commands, not
Airflow's own validation.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import pytest
from helpers import REPO

pytestmark = pytest.mark.unit

DAG_FILE = REPO / "examples" / "airflow" / "gristmill_weekly.py"
RECIPE = REPO / "examples" / "cron" / "weekly_refresh.sh"


class _Task:
    def __init__(self, task_id: str, **kwargs):
        self.task_id, self.kwargs, self.downstream = task_id, kwargs, []
        _Dag.current.tasks[task_id] = self

    def __rshift__(self, other: _Task) -> _Task:
        self.downstream.append(other.task_id)
        return other


class _Dag:
    current: _Dag

    def __init__(self, dag_id: str, **kwargs):
        self.dag_id, self.kwargs, self.tasks = dag_id, kwargs, {}

    def __enter__(self) -> _Dag:
        _Dag.current = self
        return self

    def __exit__(self, *exc) -> None:
        return None


def _stub_airflow(monkeypatch) -> None:
    airflow = types.ModuleType("airflow")
    airflow.DAG = _Dag
    bash = types.ModuleType("airflow.operators.bash")
    bash.BashOperator = _Task
    python = types.ModuleType("airflow.operators.python")
    python.ShortCircuitOperator = _Task
    operators = types.ModuleType("airflow.operators")
    for name, module in {
        "airflow": airflow,
        "airflow.operators": operators,
        "airflow.operators.bash": bash,
        "airflow.operators.python": python,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)


def _load_dag(monkeypatch):
    if importlib.util.find_spec("airflow") is None:
        _stub_airflow(monkeypatch)
    spec = importlib.util.spec_from_file_location("gristmill_weekly", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_airflow_dag_wires_the_four_steps(monkeypatch, tmp_path):
    monkeypatch.setenv("GRISTMILL_RELEASES", str(tmp_path / "releases"))
    module = _load_dag(monkeypatch)
    dag = module.dag
    assert dag.dag_id == "gristmill_weekly_refresh"
    if isinstance(dag, _Dag):
        order, task = [], dag.tasks["plan"]
        while True:
            order.append(task.task_id)
            if not task.downstream:
                break
            task = dag.tasks[task.downstream[0]]
        assert order == ["plan", "anything_new", "build", "validate", "promote"]
        commands = {t: dag.tasks[t].kwargs.get("bash_command", "") for t in order}
        assert "--dry-run --json" in commands["plan"] and "refresh" in commands["plan"]
        assert "--output" in commands["build"] and "--dry-run" not in commands["build"]
        assert "gristmill validate" in commands["validate"]
        assert "mv -Tf" in commands["promote"] and "latest" in commands["promote"]
        assert dag.kwargs["max_active_runs"] == 1
    # the short circuit reads the dry run's JSON plan
    plan = tmp_path / "plan.json"
    plan.write_text('{"inputs": {"files": 0}}')
    assert module.has_new_inputs(str(plan)) is False
    plan.write_text('{"inputs": {"files": 3}}')
    assert module.has_new_inputs(str(plan)) is True


def test_cron_recipe_is_valid_shell_and_needs_its_variables(tmp_path):
    assert subprocess.run(["bash", "-n", str(RECIPE)], check=False).returncode == 0
    done = subprocess.run(
        ["bash", str(RECIPE)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0 and "set RELEASES" in done.stderr
