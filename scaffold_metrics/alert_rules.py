"""Prometheus alerting rules from the metric plan: a rules file for a plain Prometheus and the
same groups as a prometheus-operator PrometheusRule.

Per kind: a Ready/Available condition not True (when conditions are planned), generation not
observed (when metadata.generation and status.observedGeneration both are), a deletion held by
finalizers (when metadata.deletionTimestamp is). For the runtime: a collector that has not
synced, generator errors, the scrape target down. Names, severities, `for:` and the
summary/description annotations follow the Prometheus community mixins' conventions. What the
plan cannot feed is left out and listed in the files' header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .monitoring_config import AlertsConfig
from .monitoring_plan import (
    SELF_GENERATOR_ERRORS,
    SELF_LAST_SYNC,
    SELF_LIST_FAILURES,
    SELF_LIST_REQUESTS,
    KindSignals,
    kind_signals,
    promql_string,
    regex_alternatives,
)
from .plan_model import KindPlan, MetricsPlan
from .prometheus_rules import rule_files
from .render import RenderedFile, comment_text

RUNTIME_GROUP = "operator-metrics.runtime"
STUCK_DELETION_SECONDS = 15 * 60
_PLAIN_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _rule(
    alert: str,
    expr: str,
    for_: str | None,
    severity: str,
    summary: str,
    description: str,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_ is not None:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def template_text(text: str) -> str:
    """`text` as it must appear in an annotation (a Go template): as it is, or, when it holds
    an action's delimiter, as a string literal the template prints, so CRD text (a kind's name)
    is never run as template code."""
    if "{{" not in text and "}}" not in text:
        return text
    return "{{ " + json.dumps(text) + " }}"


def _object(kind: KindPlan) -> str:
    """The object an alert is about, as alert templates write it."""
    name = "{{ $labels." + kind.label_name + " }}"
    return ("{{ $labels.namespace }}/" + name) if kind.namespaced else name


def alert_prefix(kind: KindPlan, plan: MetricsPlan) -> str:
    """What a kind's alert names start with: the kind (`HTTPRoute`) when it is a plain name
    no other kind of the project has, else its unique generated class name (`HttpRoute`)."""
    same = sum(1 for k in plan.kinds if k.kind == kind.kind)
    return kind.kind if same == 1 and _PLAIN_KIND.match(kind.kind) else kind.class_prefix


def kind_rules(
    signals: KindSignals, conditions: Sequence[str], prefix: str
) -> list[dict[str, Any]]:
    """The alerts about the objects of one kind (those its plan can feed), named `prefix...`."""
    kind = signals.kind
    obj = f"{template_text(kind.kind)} {_object(kind)}"
    rules = []
    if signals.conditions is not None:
        family = signals.conditions
        type_label, status_label = family.extra_labels[:2]
        types = promql_string(regex_alternatives(tuple(conditions)))
        expr = f'{family.name}{{{type_label}=~{types},{status_label}="True"}} == 0'
        condition = "{{ $labels." + type_label + " }}"
        rules.append(
            _rule(
                f"{prefix}NotReady",
                expr,
                "15m",
                "warning",
                f"{obj} is not {condition}.",
                f"Condition {condition} of {obj} has not been True for more than 15 minutes.",
            )
        )
    pair = signals.generation_pair
    if pair is not None:
        generation, observed = pair
        rules.append(
            _rule(
                f"{prefix}GenerationMismatch",
                f"{generation.name} != {observed.name}",
                "15m",
                "warning",
                f"{obj} has a change its operator has not observed.",
                f"Generation {{{{ $value }}}} of {obj} has not been observed by its operator "
                "(status.observedGeneration) for more than 15 minutes: the change is not "
                "applied, or the operator is stuck.",
            )
        )
    if signals.deletion is not None:
        rules.append(
            _rule(
                f"{prefix}DeletionStuck",
                f"time() - {signals.deletion.name} > {STUCK_DELETION_SECONDS}",
                None,
                "warning",
                f"{obj} is stuck in deletion.",
                f"{obj} was asked to be deleted {{{{ $value | humanizeDuration }}}} ago and "
                "its finalizers still hold it.",
            )
        )
    return rules


def runtime_rules(kinds: Sequence[KindPlan], job: str) -> list[dict[str, Any]]:
    """The alerts about the metrics runtime of these kinds and its scrape target."""
    names = tuple(sorted({k.kind for k in kinds}))
    of_kinds = "{kind=~" + promql_string(regex_alternatives(names)) + "}"
    requests = SELF_LIST_REQUESTS + of_kinds
    failures = SELF_LIST_FAILURES + of_kinds
    not_synced = (
        f"({requests} unless {SELF_LAST_SYNC}{of_kinds})"
        f" or (rate({failures}[15m]) / rate({requests}[15m]) > 0.5)"
    )
    up = "up{job=" + promql_string(job) + "}"
    collector = (
        "{{ $labels.kind }} in {{ with $labels.namespace }}namespace {{ . }}"
        "{{ else }}all namespaces{{ end }}"
    )
    return [
        _rule(
            "OperatorMetricsCollectorNotSynced",
            not_synced,
            "15m",
            "critical",
            "operator-metrics collector has not synced.",
            f"The operator-metrics collector of {collector} on "
            "{{ $labels.instance }} has not completed a list of its objects, or most of its "
            "lists failed, for more than 15 minutes: its metrics are missing or stale.",
        ),
        _rule(
            "OperatorMetricsGeneratorErrors",
            f"increase({SELF_GENERATOR_ERRORS}{of_kinds}[10m]) > 0",
            "5m",
            "warning",
            "operator-metrics could not turn objects into samples.",
            "{{ $value | humanize }} objects or values of {{ $labels.kind }} on "
            "{{ $labels.instance }} could not be turned into samples in the last 10 minutes "
            "(a value of the wrong type, a string too long); their series are missing.",
        ),
        _rule(
            "OperatorMetricsTargetDown",
            f"{up} == 0 or absent({up})",
            "10m",
            "critical",
            "operator-metrics target is down.",
            f"Prometheus has not scraped the custom-resource metrics of job {template_text(job)}"
            "{{ with $labels.instance }} on {{ . }}{{ end }} for more than 10 minutes "
            "(down, or no target at all).",
        ),
    ]


def rule_groups(plan: MetricsPlan, config: AlertsConfig) -> list[dict[str, Any]]:
    """Every group: one per kind with alerts, then the runtime's."""
    groups = []
    for kind in plan.kinds:
        rules = kind_rules(kind_signals(kind), config.conditions, alert_prefix(kind, plan))
        rules = _with_runbooks(rules, config)
        if rules:
            groups.append({"name": f"operator-metrics.{kind.module}", "rules": rules})
    runtime = _with_runbooks(runtime_rules(plan.kinds, config.job), config)
    groups.append({"name": RUNTIME_GROUP, "rules": runtime})
    return groups


def _with_runbooks(rules: list[dict[str, Any]], config: AlertsConfig) -> list[dict[str, Any]]:
    """`rules`, each annotated with its runbook when the config names where runbooks are."""
    for rule in rules:
        runbook = config.runbook_for(rule["alert"])
        if runbook is not None:
            rule["annotations"]["runbook_url"] = runbook
    return rules


def left_out(plan: MetricsPlan) -> list[str]:
    """One line per alert a kind does not get, with why."""
    return [
        f"{kind.kind}: {what}: {why}"
        for kind in plan.kinds
        for what, why in kind_signals(kind).missing()
    ]


def _header(what: str, sources: Sequence[str], plan: MetricsPlan) -> str:
    lines = [
        f"# Generated by operator-metrics: {comment_text(what)}.",
        "# DO NOT EDIT: changes are lost when `operator-metrics generate` runs again.",
        "# Source CRDs:",
        *(f"#   {comment_text(s)}" for s in sources),
    ]
    missing = left_out(plan)
    if missing:
        lines.append("# Left out (the plan has no family for them):")
        lines.extend(f"#   {comment_text(m)}" for m in missing)
    return "\n".join(lines) + "\n"


def alert_rule_files(
    plan: MetricsPlan,
    config: AlertsConfig,
    sources: Sequence[str],
    operator: str,
    namespace: str | None,
) -> list[RenderedFile]:
    """The rules file and, when configured, the PrometheusRule holding the same groups."""
    return rule_files(
        rule_groups(plan, config),
        lambda title: _header(title, sources, plan),
        what="alerting rules",
        rules_path=config.rules,
        prometheus_rule_path=config.prometheus_rule,
        name=f"{operator}-metrics-alerts",
        namespace=namespace,
        labels=config.labels,
    )
