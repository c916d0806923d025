#!/usr/bin/env python3
"""Renders the Grafana dashboards of todo-dapr into grafana/dashboards/*.json.

The dashboards are data: the services and their panels are listed below, and a few helpers
turn them into Grafana's dashboard JSON (schemaVersion 39, Prometheus data source chosen by
the `datasource` variable). The rendered JSON is committed; `cargo xtask test` renders it again
into a temporary directory and fails if the committed files differ, so edit this file, run
`python3 grafana/build.py`, and commit both.

Metric names are exactly those the Rust code exports (the `pub const ... = "todo_..."` strings)
plus daprd's, the Scheduler's, cAdvisor's and the process collector's; the same check verifies
every name used here. Scrape conventions the queries rely on are in grafana/README.md.

Standard library only; `--out DIR` writes somewhere else (used by the check).
"""

import argparse
import json
import pathlib

DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
SIDECAR_BUDGET_BYTES = 128 * 1024 * 1024  # docs/architecture.md, Targets: sidecar < 128 MiB; chart limit 128Mi
PUBLISH_P95_TARGET_S = 0.1  # the original plan's publish p95 target
REMINDER_LATENESS_TARGET_S = 1.0  # docs/architecture.md, Targets: fires <= 1 s after remind_at

# Scrape jobs (see README.md): the services, their sidecars, the Scheduler.
APP_JOB = "todo-dapr"
DAPRD_JOB = "daprd"
SCHEDULER_JOB = "dapr-scheduler"


# --- queries ---------------------------------------------------------------------------------


def quantiles(metric, selector, by="", qs=(0.5, 0.95, 0.99), legend=""):
    """One histogram_quantile target per quantile over `metric`_bucket."""
    group = ", ".join([g for g in (by, "le") if g])
    prefix = f"{legend} " if legend else ""
    return [
        target(
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({metric}_bucket{selector}[{RATE}])))",
            f"{prefix}p{round(q * 100)}",
        )
        for q in qs
    ]


def target(expr, legend):
    return {"expr": expr, "legendFormat": legend}


# --- panels ----------------------------------------------------------------------------------


def share(metric, part, whole, by=""):
    """`part` of `whole` as a ratio. A labelled counter has no `part` series until its first
    increment, so the numerator falls back to 0 × the denominator: 0, not "No data", while all
    is well."""
    agg = f"sum by ({by}) " if by else "sum"
    whole_rate = f"{agg}(rate({metric}{whole}[{RATE}]))"
    part_rate = f"{agg}(rate({metric}{part}[{RATE}]))"
    return f"({part_rate} or 0 * {whole_rate}) / {whole_rate}"


def timeseries(title, targets, unit="short", description="", threshold=None, w=8, h=8,
               stack=False, min0=True):
    """A time series panel; `threshold` draws a dashed red line at that value."""
    steps = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if threshold is not None else "off"},
    }
    defaults = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": custom,
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if min0:
        defaults["min"] = 0
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                       "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
        "_size": (w, h),
    }


def stat(title, expr, unit="short", description="", warn=None, crit=None, w=4, h=4,
         legend=""):
    """A single-value panel, green below `warn`, orange from `warn`, red from `crit`."""
    steps = [{"color": "green", "value": None}]
    if warn is not None:
        steps.append({"color": "orange", "value": warn})
    if crit is not None:
        steps.append({"color": "red", "value": crit})
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "auto",
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
        },
        "targets": [target(expr, legend)],
        "_size": (w, h),
    }


# --- the services ----------------------------------------------------------------------------
# One row each in the service dashboard: RED from the shared middleware metrics, then what
# only that service exports.


def publish_panel(svc):
    return timeseries(
        "Publish latency p95 by topic",
        quantiles("todo_publish_duration_seconds", f'{{service="{svc}"}}', by="topic",
                  qs=(0.95,), legend="{{topic}}"),
        unit="s", threshold=PUBLISH_P95_TARGET_S,
        description="App -> sidecar -> broker ack, retries included.",
    )


def consumed_panel(svc):
    return timeseries(
        "Deliveries by status",
        [target(f'sum by (topic, status) (rate(todo_events_consumed_total{{service="{svc}"}}'
                f"[{RATE}]))", "{{topic}} {{status}}")],
        unit="ops", stack=True,
        description="Events Dapr delivered, by the status we answered (SUCCESS, RETRY, DROP).",
    )


def outcome_panel(title, metric, svc, description):
    return timeseries(
        title,
        [target(f'sum by (outcome) (rate({metric}{{service="{svc}"}}[{RATE}]))', "{{outcome}}")],
        unit="ops", stack=True, description=description,
    )


SERVICES = [
    {
        "name": "backend",
        "extra": lambda s: [
            publish_panel(s),
            timeseries("Outbox backlog", [target("max(todo_outbox_pending)", "pending rows")],
                       description="Outbox rows not yet published (todo_outbox_pending; "
                                   "relay metrics carry no service label)."),
            timeseries("Outbox commit -> ack lag",
                       quantiles("todo_outbox_publish_lag_seconds", "", qs=(0.5, 0.95, 0.99)),
                       unit="s"),
        ],
    },
    {
        "name": "notification",
        "extra": lambda s: [
            consumed_panel(s),
            timeseries("Reminder lateness",
                       quantiles("todo_reminder_lateness_seconds", f'{{service="{s}"}}'),
                       unit="s", threshold=REMINDER_LATENESS_TARGET_S,
                       description="Trigger time minus remind_at (target: <= 1 s)."),
            outcome_panel("Reminder triggers by outcome", "todo_reminder_triggers_total", s,
                          "What each reminder job trigger did."),
            timeseries("Reminder jobs", [
                target(f'sum(rate(todo_reminder_jobs_scheduled_total{{service="{s}"}}[{RATE}]))',
                       "scheduled"),
                target(f'sum(rate(todo_reminder_jobs_deleted_total{{service="{s}"}}[{RATE}]))',
                       "deleted"),
                target(f'sum(rate(todo_reminder_stale_events_total{{service="{s}"}}[{RATE}]))',
                       "stale events ignored"),
                target(f'sum(rate(todo_reminder_overdue_total{{service="{s}",'
                       f'outcome="scheduled"}}[{RATE}]))', "overdue, fired at once"),
                target(f'sum(rate(todo_reminder_sweep_repairs_total{{service="{s}"}}[{RATE}]))',
                       "applied by the sweep"),
            ], unit="ops", description="Overdue: task events that arrived after their reminder "
                                       "time. Applied by the sweep: tasks whose newest event had "
                                       "not arrived (lost or stuck) — above zero means events "
                                       "went missing."),
            publish_panel(s),
        ],
    },
    {
        "name": "email-delivery",
        "extra": lambda s: [
            consumed_panel(s),
            outcome_panel("Emails by outcome", "todo_emails_sent_total", s,
                          "sent, duplicate (already settled), retry, failed (to the DLQ)."),
            timeseries("SMTP conversation p95 by result",
                       quantiles("todo_smtp_send_duration_seconds", f'{{service="{s}"}}',
                                 by="result", qs=(0.95,), legend="{{result}}"),
                       unit="s"),
        ],
    },
    {
        "name": "recurring-task",
        "extra": lambda s: [
            consumed_panel(s),
            outcome_panel("Recurring completions by outcome", "todo_occurrences_created_total",
                          s, "created, duplicate, series_ended, dropped."),
        ],
    },
]


def red_row(service):
    svc = service["name"]
    sel = f'{{service="{svc}"}}'
    return (svc, [
        timeseries("Rate: requests/s by route", [
            target(f"sum by (method, route) (rate(todo_http_requests_total{sel}[{RATE}]))",
                   "{{method}} {{route}}"),
        ], unit="reqps", stack=True),
        timeseries("Errors: share of responses", [
            target(share("todo_http_requests_total", f'{{service="{svc}",status=~"5.."}}', sel),
                   "5xx"),
            target(share("todo_http_requests_total", f'{{service="{svc}",status=~"4.."}}', sel),
                   "4xx"),
        ], unit="percentunit"),
        timeseries("Duration", quantiles("todo_http_request_duration_seconds", sel), unit="s"),
    ] + service["extra"](svc))


# --- dashboards ------------------------------------------------------------------------------


def services_dashboard():
    overview = ("Overview", [
        stat("Targets up", f'sum(up{{job="{APP_JOB}"}})', description="Service targets "
             "answering the scrape.", w=4),
        stat("Targets down", f'count(up{{job="{APP_JOB}"}} == 0) or vector(0)', warn=1, w=4),
        timeseries("Requests/s by service", [
            target(f"sum by (service) (rate(todo_http_requests_total[{RATE}]))", "{{service}}"),
        ], unit="reqps", w=8),
        timeseries("5xx share by service", [
            target(share("todo_http_requests_total", '{status=~"5.."}', "", by="service"),
                   "{{service}}"),
        ], unit="percentunit", w=8),
    ])
    return dashboard(
        "todo-dapr-services", "todo-dapr / Services (RED)",
        "Rate, errors and duration per service, then what each service alone exports.",
        [overview] + [red_row(s) for s in SERVICES],
    )


def event_flow_dashboard():
    dropped = 'todo_events_consumed_total{status="DROP"}'
    rows = [
        ("Publish (app -> sidecar -> broker)", [
            timeseries("Published/s by topic and outcome", [
                target("sum by (topic, outcome) "
                       f"(rate(todo_publish_duration_seconds_count[{RATE}]))",
                       "{{topic}} {{outcome}}"),
            ], unit="ops", stack=True),
            timeseries("Publish latency by topic",
                       quantiles("todo_publish_duration_seconds", "", by="topic",
                                 qs=(0.95, 0.99), legend="{{topic}}"),
                       unit="s", threshold=PUBLISH_P95_TARGET_S,
                       description="Alert TodoPublishLatencyHigh fires when p95 > 100 ms."),
            timeseries("Sidecar egress by topic", [
                target(f"sum by (app_id, topic, success) "
                       f"(rate(dapr_component_pubsub_egress_count[{RATE}]))",
                       "{{app_id}} {{topic}} success={{success}}"),
            ], unit="ops", description="daprd's count of publishes to the broker."),
        ]),
        ("Consume (broker -> sidecar -> app)", [
            timeseries("Consumed/s by status", [
                target("sum by (service, topic, status) "
                       f"(rate(todo_events_consumed_total[{RATE}]))",
                       "{{service}} {{topic}} {{status}}"),
            ], unit="ops"),
            timeseries("Sidecar deliveries by process status", [
                target(f"sum by (app_id, topic, process_status) "
                       f"(rate(dapr_component_pubsub_ingress_count[{RATE}]))",
                       "{{app_id}} {{topic}} {{process_status}}"),
            ], unit="ops", description="daprd's view: includes app timeouts and 5xx, "
                                       "which the app itself never counts."),
            timeseries("RETRY share by consumer", [
                target(share("todo_events_consumed_total", '{status="RETRY"}', "",
                             by="service, topic"), "{{service}} {{topic}}"),
            ], unit="percentunit", threshold=0.1,
                description="Alert TodoConsumerRetryRateHigh fires above 10 % for 10 min."),
        ]),
        ("Dead letters", [
            stat("Dropped in range (app)", f"sum(increase({dropped}[$__range])) or vector(0)",
                 warn=1, w=4, description="Events answered DROP: they go to <topic>-dlq."),
            stat("Dropped in range (daprd)",
                 'sum(increase(dapr_component_pubsub_ingress_count{process_status="drop"}'
                 '[$__range])) or vector(0)', warn=1, w=4),
            timeseries("Dropped by consumer", [
                target(f"sum by (service, topic) (increase({dropped}[{RATE}]))",
                       "{{service}} {{topic}} (app)"),
                target('sum by (app_id, topic) (increase(dapr_component_pubsub_ingress_count'
                       f'{{process_status="drop"}}[{RATE}]))', "{{app_id}} {{topic}} (daprd)"),
            ], unit="short", w=16),
        ]),
        ("Outbox (backend)", [
            timeseries("Outbox backlog", [
                target("max(todo_outbox_pending)", "pending rows"),
                target("deriv(max(todo_outbox_pending)[10m:])", "growth rows/s (10m)"),
            ], min0=False, w=12, description="Alert TodoOutboxBacklogGrowing: growing over "
                                             "10 min and above 100 rows."),
            timeseries("Commit -> sidecar ack lag",
                       quantiles("todo_outbox_publish_lag_seconds", ""), unit="s", w=12),
        ]),
        ("Reminders and their effects", [
            timeseries("Reminder lateness", quantiles("todo_reminder_lateness_seconds", ""),
                       unit="s", threshold=REMINDER_LATENESS_TARGET_S, w=6),
            timeseries("Reminder triggers by outcome", [
                target(f"sum by (outcome) (rate(todo_reminder_triggers_total[{RATE}]))",
                       "{{outcome}}"),
            ], unit="ops", stack=True, w=6),
            timeseries("Emails by outcome", [
                target(f"sum by (outcome) (rate(todo_emails_sent_total[{RATE}]))", "{{outcome}}"),
            ], unit="ops", stack=True, w=6),
            timeseries("Recurring completions by outcome", [
                target(f"sum by (outcome) (rate(todo_occurrences_created_total[{RATE}]))",
                       "{{outcome}}"),
            ], unit="ops", stack=True, w=6),
        ]),
    ]
    return dashboard(
        "todo-dapr-event-flow", "todo-dapr / Event flow",
        "Events from the outbox to the broker, to the consumers, to dead letters; reminders.",
        rows,
    )


def sidecar_dashboard():
    ns = 'namespace=~"$namespace"'
    daprd_ws = f'container_memory_working_set_bytes{{{ns},container="daprd"}}'
    app_ws = f'container_memory_working_set_bytes{{{ns},container!~"daprd|POD|"}}'
    daprd_cpu = f'container_cpu_usage_seconds_total{{{ns},container="daprd"}}'
    app_cpu = f'container_cpu_usage_seconds_total{{{ns},container!~"daprd|POD|"}}'
    # Only pods that have a daprd container: "and on (namespace, pod)" this.
    with_sidecar = f"and on (namespace, pod) max by (namespace, pod) ({daprd_ws})"
    rows = [
        ("Per process (daprd's and the services' process_* metrics; local and Kubernetes)", [
            stat("daprd RSS, largest", f'max(process_resident_memory_bytes{{job="{DAPRD_JOB}"}})',
                 unit="bytes", warn=0.9 * SIDECAR_BUDGET_BYTES, crit=SIDECAR_BUDGET_BYTES, w=4),
            stat("daprd / app RSS",
                 f'sum(process_resident_memory_bytes{{job="{DAPRD_JOB}"}}) / '
                 f'sum(process_resident_memory_bytes{{job="{APP_JOB}"}})',
                 unit="percentunit", w=4, description="Sidecars' total RSS over the services'."),
            timeseries("Resident memory: daprd vs service", [
                target(f'max by (app_id) (process_resident_memory_bytes{{job="{DAPRD_JOB}"}})',
                       "{{app_id}} daprd"),
                target(f'max by (app_id) (process_resident_memory_bytes{{job="{APP_JOB}"}})',
                       "{{app_id}} app"),
            ], unit="bytes", threshold=SIDECAR_BUDGET_BYTES, w=8,
                description="Dashed line: the 128 MiB sidecar budget."),
            timeseries("CPU: daprd vs service", [
                target(f'max by (app_id) (rate(process_cpu_seconds_total{{job="{DAPRD_JOB}"}}'
                       f"[{RATE}]))", "{{app_id}} daprd"),
                target(f'max by (app_id) (rate(process_cpu_seconds_total{{job="{APP_JOB}"}}'
                       f"[{RATE}]))", "{{app_id}} app"),
            ], unit="percentunit", w=8, description="CPU seconds per second (1 = one core)."),
        ]),
        ("Per pod (Kubernetes: cAdvisor container metrics)", [
            timeseries("Memory working set: daprd vs app container", [
                target(f"max by (pod) ({daprd_ws})", "{{pod}} daprd"),
                target(f"sum by (pod) (max by (namespace, pod, container) ({app_ws}) "
                       f"{with_sidecar})", "{{pod}} app"),
            ], unit="bytes", threshold=SIDECAR_BUDGET_BYTES, w=12,
                description="Dashed line: the 128 MiB budget (the chart's default limit)."),
            timeseries("daprd memory / its limit", [
                target(f"max by (namespace, pod) ({daprd_ws}) / on (namespace, pod) "
                       f"max by (namespace, pod) (container_spec_memory_limit_bytes"
                       f'{{{ns},container="daprd"}} > 0)', "{{pod}}"),
            ], unit="percentunit", threshold=0.9, w=12,
                description="Alert DaprSidecarMemoryNearLimit fires above 90 % for 5 min."),
            timeseries("CPU: daprd vs app container", [
                target(f"sum by (pod) (rate({daprd_cpu}[{RATE}]))", "{{pod}} daprd"),
                target(f"sum by (pod) (sum by (namespace, pod) (rate({app_cpu}[{RATE}])) "
                       f"{with_sidecar})", "{{pod}} app"),
            ], unit="percentunit", w=12),
            timeseries("daprd share of pod memory", [
                target(f"max by (namespace, pod) ({daprd_ws}) / on (namespace, pod) "
                       f"(max by (namespace, pod) ({daprd_ws}) + on (namespace, pod) "
                       f"sum by (namespace, pod) (max by (namespace, pod, container) ({app_ws})))",
                       "{{pod}}"),
            ], unit="percentunit", w=12),
        ]),
    ]
    namespace = {
        "name": "namespace",
        "label": "Namespace",
        "type": "query",
        "datasource": DS,
        "query": {
            "query": 'label_values(container_memory_working_set_bytes{container="daprd"}, '
                     "namespace)",
            "refId": "namespace",
        },
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
    }
    return dashboard(
        "todo-dapr-sidecar-overhead", "todo-dapr / Dapr sidecar overhead",
        "What daprd costs next to each service, against the 128 MiB sidecar budget.",
        rows, variables=[namespace],
    )


def scheduler_dashboard():
    rows = [
        ("Scheduler service", [
            stat("Sidecars connected", "sum(dapr_scheduler_sidecars_connected)", w=4),
            stat("Scheduler targets up", f'sum(up{{job="{SCHEDULER_JOB}"}})', w=4),
            timeseries("Jobs created/s by type", [
                target(f"sum by (type) (rate(dapr_scheduler_jobs_created_total[{RATE}]))",
                       "{{type}}"),
            ], unit="ops", w=8),
            timeseries("Triggers/s", [
                target(f"sum(rate(dapr_scheduler_jobs_triggered_total[{RATE}]))", "triggered"),
                target(f"sum(rate(dapr_scheduler_jobs_failed_total[{RATE}]))", "failed"),
                target(f"sum(rate(dapr_scheduler_jobs_undelivered_total[{RATE}]))",
                       "undelivered"),
            ], unit="ops", w=8, description="failed: the app did not accept the trigger; "
                                            "undelivered: no sidecar of the app was connected."),
            timeseries("Trigger latency (Scheduler -> sidecar)",
                       quantiles("dapr_scheduler_trigger_latency", "", qs=(0.5, 0.95, 0.99)),
                       unit="ms", w=12,
                       description="The Scheduler's buckets are coarse: "
                                   "0, 100, 500, 1000, 5000, 10000 ms."),
            timeseries("Jobs in our code", [
                target(f"sum(rate(todo_reminder_jobs_scheduled_total[{RATE}]))", "scheduled"),
                target(f"sum(rate(todo_reminder_jobs_deleted_total[{RATE}]))", "deleted"),
                target(f"sum(rate(todo_reminder_triggers_total[{RATE}]))", "triggers handled"),
            ], unit="ops", w=12, description="notification's own counts, to compare."),
        ]),
        ("Job triggers at the sidecars", [
            timeseries("Triggers delivered to the app, by app", [
                target(f"sum by (app_id) (rate(dapr_component_job_success_count[{RATE}]))",
                       "{{app_id}} ok"),
                target(f"sum by (app_id) (rate(dapr_component_job_failure_count[{RATE}]))",
                       "{{app_id}} failed"),
            ], unit="ops", w=12),
            timeseries("App handling time of a trigger",
                       quantiles("dapr_component_job_latencies", "", by="app_id",
                                 qs=(0.95,), legend="{{app_id}}"),
                       unit="ms", w=12),
        ]),
    ]
    return dashboard(
        "todo-dapr-scheduler", "todo-dapr / Dapr Scheduler jobs",
        "The Scheduler's jobs (reminders): created, triggered, failed, latency.",
        rows,
    )


# --- assembly --------------------------------------------------------------------------------


def dashboard(uid, title, description, rows, variables=()):
    """Lays `rows` (title, panels) out on the 24-column grid and wraps them in a dashboard."""
    panels, next_id, y = [], 1, 0
    for row_title, row_panels in rows:
        panels.append({"type": "row", "title": row_title, "id": next_id, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y, x, line_h = next_id + 1, y + 1, 0, 0
        for panel in row_panels:
            w, h = panel.pop("_size")
            if x + w > 24:
                x, y, line_h = 0, y + line_h, 0
            panel["id"] = next_id
            panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            panel["datasource"] = DS
            for ref, t in zip("ABCDEFGH", panel["targets"]):
                t.update({"refId": ref, "datasource": DS, "range": True, "editorMode": "code"})
            if not panel["description"]:
                del panel["description"]
            panels.append(panel)
            next_id, x, line_h = next_id + 1, x + w, max(line_h, h)
        y += line_h
    datasource = {"name": "datasource", "label": "Data source", "type": "datasource",
                  "query": "prometheus", "refresh": 1, "includeAll": False, "multi": False}
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["todo-dapr"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "templating": {"list": [datasource, *variables]},
        "panels": panels,
    }


DASHBOARDS = {
    "services.json": services_dashboard,
    "event-flow.json": event_flow_dashboard,
    "sidecar-overhead.json": sidecar_dashboard,
    "scheduler.json": scheduler_dashboard,
}


def main():
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=here / "dashboards",
                        help="directory to write the JSON files into")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2) + "\n"
        (out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
