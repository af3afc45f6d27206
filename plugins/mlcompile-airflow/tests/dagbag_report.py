"""Run by the Airflow venv's interpreter: `python dagbag_report.py DAG_FOLDER REPORT.json`
loads the folder into Airflow's own DagBag and writes what it found as JSON: the import
errors, and each DAG's schedule and tasks, a pod's arguments also as Airflow's Jinja renders
them in a run whose id is RUN_ID (Airflow logs to stdout, hence the file)."""

import json
import sys

from airflow.dag_processing.dagbag import DagBag

ATTRIBUTES = (
    "image",
    "cmds",
    "arguments",
    "env_vars",
    "trigger_dag_id",
    "do_xcom_push",
    "to",
    "namespace",
    "op_kwargs",
    "startup_timeout_seconds",
    "trigger_rule",
    "from_email",
)

RUN_ID = "scheduled__2024-01-01T02:00:00+00:00"  # the shape of a scheduled run's id

bag = DagBag(dag_folder=sys.argv[1])
report = {"import_errors": {path: str(error) for path, error in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in sorted(bag.dags.items()):
    tasks = {
        task.task_id: {
            "operator": type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            **{a: getattr(task, a) for a in ATTRIBUTES if hasattr(task, a)},
            **({"rendered_arguments": task.render_template(task.arguments, {"run_id": RUN_ID})} if hasattr(task, "arguments") else {}),
        }
        for task in dag.tasks
    }
    timetable = dag.timetable
    report["dags"][dag_id] = {
        "cron": getattr(timetable, "expression", None),
        "timezone": str(getattr(timetable, "timezone", None)),
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "tasks": tasks,
    }
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(report, handle, default=str)
