"""The conditions of a SageMaker pipeline, built with the SDK's own classes: the evaluation
gates a candidate model must pass before it is registered, and the breach that starts the
monitoring pipeline's alert and retraining steps. Each condition reads a JSON file a step
wrote (a PropertyFile, through JsonGet)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcompile.plan.nodes import Gate, Step

if TYPE_CHECKING:
    from sagemaker.workflow.conditions import Condition

# (step, artifact) → the SDK PropertyFile of that step's JSON output
PropertyFiles = dict[tuple[str, str], Any]

_COMPARISON = {"min": ">=", "max": "<=", "min_delta_vs_production": "beats production by at least"}


def gates(gates: tuple[Gate, ...], property_files: PropertyFiles, evaluate: str, gate_step: str, then: list[Any]) -> list[Any]:
    """One ConditionStep per gate, chained: each passes on to the next, the last to
    `then` (register, …); a failed gate ends the run in a FailStep naming it."""
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet

    if not gates:
        return then
    names = _gate_names(gates)
    chain = then
    for index in reversed(range(len(gates))):
        gate, name = gates[index], names[index]
        condition: Condition
        if gate.comparison == "min_delta_vs_production":
            decision = JsonGet(step_name=gate_step, property_file=property_files[(gate_step, "decision")], json_path=f"results[{index}].passed")
            condition = ConditionEquals(left=decision, right=True)  # type: ignore[arg-type]  # JsonGet: see breach()
            message: Any = (
                f"gate failed: {gate.metric} must beat the production model by at least {gate.threshold:g} (step {gate_step}, decision.json results[{index}])"
            )
        else:
            value = JsonGet(step_name=evaluate, property_file=property_files[(evaluate, "metrics")], json_path=f"metrics.{gate.metric}")
            compare = ConditionGreaterThanOrEqualTo if gate.comparison == "min" else ConditionLessThanOrEqualTo
            condition = compare(left=value, right=gate.threshold)  # type: ignore[arg-type]  # JsonGet: see breach()
            message = Join(on="", values=[f"gate failed: {gate.metric} {_COMPARISON[gate.comparison]} {gate.threshold:g} required, the candidate has ", value])
        fail = FailStep(f"fail-{name}", error_message=message)
        chain = [ConditionStep(name, conditions=[condition], if_steps=chain, else_steps=[fail])]
    return chain


def breach(property_files: PropertyFiles, checks: list[Step], then: list[Any]) -> list[Any]:
    """One ConditionStep: `then` (alert, trigger retraining) runs when any check found a breach."""
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals, ConditionOr
    from sagemaker.workflow.functions import JsonGet

    conditions: list[Condition] = []
    for check in checks:
        decision = next(a for a in check.outputs if a.type == "decision")
        get = JsonGet(step_name=check.name, property_file=property_files[(check.name, decision.name)], json_path="breach")
        # a condition compares a JsonGet (the SDK's docs' example), which its annotation omits
        conditions.append(ConditionEquals(left=get, right=True))  # type: ignore[arg-type]
    condition = conditions[0] if len(conditions) == 1 else ConditionOr(conditions=conditions)
    return [ConditionStep("breach", conditions=[condition], if_steps=then, else_steps=[])]


def _gate_names(gates: tuple[Gate, ...]) -> list[str]:
    """gate-<metric>-<comparison>, numbered when repeated; gate-<n> when `fail-<name>` would
    exceed SageMaker's 64 characters of a step name."""
    names = [f"gate-{g.metric}-{g.comparison.replace('_', '-')}" for g in gates]
    names = [f"{n}-{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]
    return [n if len(f"fail-{n}") <= 64 else f"gate-{i + 1}" for i, n in enumerate(names)]
