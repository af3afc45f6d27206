"""One plan pipeline as the source of an Airflow DAG file.

Steps run as KubernetesPodOperator tasks with the runtime contract every mlcompile target
uses: `python -m mlcompile.runtime <step> --config <json> --input NAME=URI --output NAME=URI`
(a user's trainer container is refused: nothing stages its artifacts to local paths).
Artifacts live under `<artifact_root>/<system>/<pipeline>/<run id>/<step>/<name>` (the run id
with `-` for `:`, `+` and `/`), so each DAG run has its own. A decision (the gate's, a
monitoring check's) is written to the pod's XCom file; a ShortCircuitOperator reads it and
skips what must not run: registration when a gate fails, the alert and the retraining
trigger when no check breached. The retraining trigger is a TriggerDagRunOperator starting
the training DAG; email alerts go through Airflow's SMTP connection (EmailOperator). Nothing here imports Airflow: the file is text."""

from __future__ import annotations

import keyword
import re
from typing import Any

from mlcompile.plan.nodes import Pipeline, Plan, Schedule, Step
from mlcompile.plan.step_config import runtime_args, step_config
from mlcompile.runtime.contract import env_name
from mlcompile.secrets import refs_in
from mlcompile.targets.base import resource_labels
from mlcompile_airflow.settings import AirflowSettings

RUN_ID = "{{ run_id }}"  # Jinja: Airflow renders it in the pod's arguments and environment
# the run's folder: its id (`scheduled__2024-01-01T02:00:00+00:00`) without the ':' and '+'
# that object stores and fsspec paths mishandle, and any '/' of a user-given run id
RUN_FOLDER = "{{ run_id | replace(':', '-') | replace('+', '-') | replace('/', '-') }}"
XCOM_FILE = "/airflow/xcom/return.json"  # what KubernetesPodOperator pushes to XCom
# How long a pod may stay Pending: node pools scale from zero and the runtime image is large
# (KubernetesPodOperator's default of 120 s fails the task first); GPU/TPU nodes come slower.
STARTUP_TIMEOUT_SECONDS, ACCELERATOR_STARTUP_TIMEOUT_SECONDS = 600, 1800
BREACH = "breach"  # run_if of the steps that run when any monitoring check breached
# what a DAG file imports, each only when the file uses it (no unused import to lint)
IMPORTS = {
    "KubernetesPodOperator": "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
    "Secret": "from airflow.providers.cncf.kubernetes.secret import Secret",
    "EmailOperator": "from airflow.providers.smtp.operators.smtp import EmailOperator",
    "ShortCircuitOperator": "from airflow.providers.standard.operators.python import ShortCircuitOperator",
    "TriggerDagRunOperator": "from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator",
    "DAG": "from airflow.sdk import DAG",
    "k8s": "from kubernetes.client import models as k8s",
}
DECIDED = '''

def decided(task_ids, ti=None):
    """True when the runtime's decision document (the task's XCom) of any task says so."""
    return any(bool((ti.xcom_pull(task_ids=task_id) or {}).get("decision")) for task_id in task_ids)
'''
RESERVED = {"dag", "k8s", "datetime", "timedelta", "timezone", "decided", "Secret", "DAG"}
JINJA_MARKS = ("{{", "{%", "{#")


def py(value: Any) -> str:
    """A Python literal, dictionaries with sorted keys (the same value, the same text)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py(k)}: {py(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py(v) for v in value) + "]"
    return repr(value)


def verbatim(text: str) -> str:
    """A templated field's text that Jinja must leave alone (the spec's text holding `{{`)."""
    return f"{{% raw %}}{text}{{% endraw %}}" if any(mark in text for mark in JINJA_MARKS) else text


def variable(task_id: str) -> str:
    name = re.sub(r"\W", "_", task_id)
    return f"task_{name}" if keyword.iskeyword(name) or name in RESERVED or name[0].isdigit() else name


def call(function: str, arguments: dict[str, str], indent: str = "    ") -> str:
    body = "".join(f"{indent}    {key}={value},\n" for key, value in arguments.items())
    return f"{function}(\n{body}{indent})"


class DagWriter:
    def __init__(self, plan: Plan, pipeline: Pipeline, settings: AirflowSettings):
        self.plan, self.pipeline, self.settings = plan, pipeline, settings
        self.root = f"{settings.artifact_root.rstrip('/')}/{plan.system}/{pipeline.name}/{RUN_FOLDER}"
        self.pod_defaults = {
            "namespace": py(settings.namespace),
            "kubernetes_conn_id": py(settings.kubernetes_conn_id),
            "labels": py(resource_labels(plan, max_value_length=63)),
            "get_logs": "True",
            "on_finish_action": py("delete_pod"),
        }
        if settings.service_account:
            self.pod_defaults["service_account_name"] = py(settings.service_account)

    def uri(self, step: str, artifact: str) -> str:
        return f"{self.root}/{step}/{artifact}"

    def resources(self, step: Step) -> dict[str, str]:
        request = step.resources
        cpu = str(int(request.cpu)) if float(request.cpu).is_integer() else f"{int(request.cpu * 1000)}m"
        requests = {"cpu": cpu, "memory": request.memory}
        limits = dict(requests)
        machine, accelerator = request.machine, request.accelerator
        if accelerator is not None and machine is not None and machine.accelerator_platform_name:
            limits[machine.accelerator_platform_name] = str(accelerator.count)  # nvidia.com/gpu, google.com/tpu
        arguments = {"container_resources": f"k8s.V1ResourceRequirements(requests={py(requests)}, limits={py(limits)})"}
        if machine is not None and machine.node_selector:
            arguments["node_selector"] = py(dict(machine.node_selector))
        if machine is not None and machine.tolerations:
            tolerations = ", ".join(f"k8s.V1Toleration(**{py(dict(t))})" for t in machine.tolerations)
            arguments["tolerations"] = f"[{tolerations}]"
        timeout, tuning = request.timeout_seconds, self.plan.tuning
        if timeout and step.kind == "tune" and tuning is not None:  # the pod runs every trial, parallel_trials at a time
            timeout *= -(-tuning.max_trials // tuning.parallel_trials)
        arguments["startup_timeout_seconds"] = str(STARTUP_TIMEOUT_SECONDS if accelerator is None else ACCELERATOR_STARTUP_TIMEOUT_SECONDS)
        if timeout:
            arguments["execution_timeout"] = f"timedelta(seconds={timeout})"
        return arguments

    def pod(self, step: Step) -> str:
        inputs = {ref.name: self.uri(ref.step, ref.artifact) for ref in step.inputs}
        outputs = {a.name: (XCOM_FILE if a.type == "decision" else self.uri(step.name, a.name)) for a in step.outputs}
        arguments: dict[str, str] = {
            "task_id": py(step.name),
            "name": py(step.name),
            **self.pod_defaults,
            "image": py(step.image),
            "cmds": py(list(step.command)),
        }
        config = step_config(self.plan, step)
        config["platform"] = {"name": "airflow", "namespace": self.settings.namespace}
        if self.settings.registry is not None:
            config["registry"]["tracking_uri"] = self.settings.registry.uri
        if step.kind == "register":  # the version is tagged with the build's lineage
            config["lineage"] = {"profile_sha256": self.plan.lineage.profile_sha256, "git_commit": self.plan.lineage.git_commit}
        args = runtime_args(self.plan, step, inputs, outputs, config) + ["--pipeline-run", RUN_ID]
        args[1] = verbatim(args[1])  # the config: the spec's text, never a template
        arguments["arguments"] = py(args)
        secrets = {env_name(name): name for name in refs_in(step.params)}
        if secrets:  # a Kubernetes Secret per secret://NAME, its value under key `value`
            arguments["secrets"] = "[" + ", ".join(f"Secret('env', {py(env)}, {py(name)}, 'value')" for env, name in sorted(secrets.items())) + "]"
        arguments.update(self.resources(step))
        arguments["do_xcom_push"] = py(any(a.type == "decision" for a in step.outputs))
        return call("KubernetesPodOperator", arguments)

    def task(self, step: Step) -> str:
        if step.kind == "trigger_retraining":
            arguments = {
                "task_id": py(step.name),
                "trigger_dag_id": py(step.params["pipeline"]),
                "conf": py({"reason": f"{self.pipeline.name}: {step.run_if}"}),
            }
            return call("TriggerDagRunOperator", arguments)
        return self.pod(step)

    def conditions(self) -> dict[str, tuple[str, list[str]]]:
        """run_if → (the short-circuit task's id, the tasks whose decisions it reads)."""
        found: dict[str, tuple[str, list[str]]] = {}
        names = {step.name for step in self.pipeline.steps}
        deciders = [s.name for s in self.pipeline.steps if s.run_if is None and any(a.type == "decision" for a in s.outputs)]
        for step in self.pipeline.steps:
            if step.run_if is not None and step.run_if not in found:
                found[step.run_if] = (f"{step.run_if}-passed", [step.run_if]) if step.run_if in names else (BREACH, deciders)
        return found

    def email(self) -> str | None:
        monitoring = self.plan.monitoring
        if monitoring is None or not any(step.kind == "alert" for step in self.pipeline.steps):
            return None
        recipients = sorted({to for alert in monitoring.alerts if alert.get("channel") == "email" for to in alert.get("to", [])})
        if not recipients:
            return None
        subject = f"[mlcompile] {self.plan.system}: monitoring breach"
        content = f"A monitoring check of {self.plan.system} breached in run {RUN_ID}; see the DAG run's logs."
        arguments = {
            "task_id": py("email-alert"),
            "to": py(recipients),
            "subject": py(subject),
            "html_content": py(content),
            "conn_id": py(self.settings.smtp_conn_id),
        }
        if self.settings.from_email is not None:
            arguments["from_email"] = py(self.settings.from_email)
        return call("EmailOperator", arguments)

    def body(self) -> list[str]:
        lines: list[str] = []
        conditions = self.conditions()
        for step in self.pipeline.steps:
            lines.append(f"    {variable(step.name)} = {self.task(step)}")
        for task_id, deciders in conditions.values():
            arguments = {"task_id": py(task_id), "python_callable": "decided", "op_kwargs": py({"task_ids": deciders})}
            if task_id == BREACH:  # one failed check must not hide the other's breach (`decided` reads a missing XCom as no)
                arguments["trigger_rule"] = py("all_done")
            lines.append(f"    {variable(task_id)} = {call('ShortCircuitOperator', arguments)}")
        edges: list[tuple[list[str], str]] = [(deciders, task_id) for task_id, deciders in conditions.values()]
        for step in self.pipeline.steps:
            after = set(step.depends_on) | {ref.step for ref in step.inputs}
            if step.run_if is not None:
                task_id, deciders = conditions[step.run_if]
                after = (after - set(deciders)) | {task_id}
            edges.append((sorted(after), step.name))
        email = self.email()
        if email is not None:
            lines.append(f"    email_alert = {email}")
            edges.append(([BREACH], "email-alert"))
        for upstream, task_id in edges:
            if upstream:
                names = ", ".join(variable(name) for name in upstream)
                lines.append(f"    {names if len(upstream) == 1 else f'[{names}]'} >> {variable(task_id)}")
        return lines


def dag_file(plan: Plan, pipeline: Pipeline, settings: AirflowSettings, schedule: Schedule | None) -> str:
    start = settings.start_date
    when = "None" if schedule is None else f"CronTriggerTimetable({py(schedule.cron)}, timezone={py(schedule.timezone)})"
    dag = {
        "dag_id": py(pipeline.name),
        "description": py(pipeline.description),
        "schedule": when,
        "start_date": f"datetime({start.year}, {start.month}, {start.day}, tzinfo=timezone.utc)",
        "catchup": "False",
        "max_active_runs": "1",  # a retraining trigger while training runs waits for it
        "tags": py(["mlcompile", plan.system]),
    }
    if pipeline.name == plan.training.name:  # a breach triggers it: paused, the triggered runs would only queue
        dag["is_paused_upon_creation"] = "False"
    header = [
        f"# {pipeline.name}: {' '.join(pipeline.description.split())}",
        f"# Generated by mlcompile {plan.mlcompile_version} for profile {plan.profile} (spec sha256 {plan.spec_sha256[:12]}). Do not edit: build again.",
    ]
    body = "\n".join([f"with {call('DAG', dag, indent='')} as dag:", *DagWriter(plan, pipeline, settings).body()])
    used = [line for name, line in IMPORTS.items() if re.search(rf"\b{name}[(.]", body)]
    if schedule is not None:
        used = [line + ", CronTriggerTimetable" if line.endswith(" DAG") else line for line in used]
    times = ", ".join(name for name in ("datetime", "timedelta", "timezone") if re.search(rf"\b{name}[(.]", body))
    helper = [DECIDED] if "python_callable=decided" in body else []
    return "\n".join([*header, f"from datetime import {times}", "", *used, *helper, "", body]) + "\n"
