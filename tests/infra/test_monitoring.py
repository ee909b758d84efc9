"""Monitoring: every alarm notifies the topic when it fires and clears, watches exactly the
resources it is given, and the dashboard and e-mail subscription follow the config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.monitoring import Monitoring, MonitoringArgs, database_connection_limit
from offline.harness import ProgramRun, run_component
from tests.infra.support import evaluated

TAGS = {"Project": "streamr", "Stage": "prod", "ManagedBy": "pulumi"}
BALANCER = "app/coord-alb/0123456789abcdef"
TARGETS = "targetgroup/coord-tg/fedcba9876543210"
ALL_ALARMS = {
    "mon-alb-5xx",
    "mon-target-5xx",
    "mon-unhealthy-targets",
    "mon-latency-p99",
    "mon-in-service",
    "mon-status-checks",
    "mon-db-cpu",
    "mon-db-free-storage",
    "mon-db-connections",
}


def monitoring(preview: bool = False, **overrides: Any) -> ProgramRun:
    settings: dict[str, Any] = {
        "autoscaling_group_name": "coord-asg-1",
        "database_identifier": "db-postgres-1",
        "database_instance_class": "db.t4g.small",
        "database_storage_gb": 50,
        "load_balancer_arn_suffix": BALANCER,
        "target_group_arn_suffix": TARGETS,
        "log_group_name": "coord-logs-1",
        "alert_email": "ops@example.com",
        "tags": TAGS,
        **overrides,
    }

    def component() -> dict[str, Any]:
        built = Monitoring("mon", MonitoringArgs(**settings))
        return {"topicArn": built.topic_arn, "dashboardUrl": built.dashboard_url}

    return run_component(component, preview=preview)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return monitoring()


def alarms(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {a.name: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def test_every_alarm_notifies_when_it_fires_and_when_it_clears(run: ProgramRun) -> None:
    topic = run.one("aws:sns/topic:Topic").outputs["arn"]
    found = alarms(run)
    assert set(found) == ALL_ALARMS
    for name, alarm in found.items():
        assert alarm["alarmActions"] == [topic], name
        assert alarm["okActions"] == [topic], name
        assert alarm["alarmDescription"], name
    assert run.outputs["topicArn"] == topic


def test_the_alarms_watch_the_given_resources(run: ProgramRun) -> None:
    found = alarms(run)
    assert found["mon-alb-5xx"]["dimensions"] == {"LoadBalancer": BALANCER}
    assert found["mon-alb-5xx"]["metricName"] == "HTTPCode_ELB_5XX_Count"
    assert found["mon-target-5xx"]["metricName"] == "HTTPCode_Target_5XX_Count"
    assert found["mon-unhealthy-targets"]["dimensions"] == {
        "LoadBalancer": BALANCER,
        "TargetGroup": TARGETS,
    }
    latency = found["mon-latency-p99"]
    assert (latency["extendedStatistic"], latency["threshold"]) == ("p99", 1)
    assert "statistic" not in latency
    assert found["mon-status-checks"]["dimensions"] == {"AutoScalingGroupName": "coord-asg-1"}
    assert found["mon-status-checks"]["namespace"] == "AWS/EC2"
    for name in ("mon-db-cpu", "mon-db-free-storage", "mon-db-connections"):
        assert found[name]["dimensions"] == {"DBInstanceIdentifier": "db-postgres-1"}
        assert found[name]["namespace"] == "AWS/RDS"
    assert found["mon-db-free-storage"]["threshold"] == 5 * 1024**3
    assert found["mon-db-free-storage"]["comparisonOperator"] == "LessThanThreshold"
    assert (
        found["mon-db-connections"]["threshold"]
        == database_connection_limit("db.t4g.small") * 8 // 10
    )


def test_in_service_is_compared_with_the_groups_own_minimum(run: ProgramRun) -> None:
    alarm = alarms(run)["mon-in-service"]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["measured"]["metric"]["metricName"] == "GroupInServiceInstances"
    assert queries["baseline"]["metric"]["metricName"] == "GroupMinSize"
    assert queries["difference"]["expression"] == "measured - baseline"
    assert queries["difference"]["returnData"] is True
    for query in ("measured", "baseline"):
        assert queries[query]["metric"]["dimensions"] == {"AutoScalingGroupName": "coord-asg-1"}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("LessThanThreshold", 0)
    assert alarm["treatMissingData"] == "breaching"


def test_connection_limits_follow_rds_memory_formula() -> None:
    assert database_connection_limit("db.t4g.micro") == 112
    assert database_connection_limit("db.t4g.small") == 225
    assert database_connection_limit("db.r7g.large") == 1802
    with pytest.raises(ValueError, match=r"db\.x9\.huge"):
        database_connection_limit("db.x9.huge")


def test_alert_email_subscribes_to_the_topic(run: ProgramRun) -> None:
    subscription = run.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "ops@example.com"
    assert subscription["topic"] == run.one("aws:sns/topic:Topic").outputs["arn"]
    quiet = monitoring(alert_email=None)
    assert not quiet.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert quiet.one("aws:sns/topic:Topic")


def test_the_dashboard_shows_the_service_and_links_from_the_outputs(run: ProgramRun) -> None:
    dashboard = run.one("aws:cloudwatch/dashboard:Dashboard").inputs
    body = json.loads(dashboard["dashboardBody"])
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert {"Requests and errors", "Coordinator instances", "Database"} <= titles
    assert "SOURCE 'coord-logs-1'" in json.dumps(body)
    assert run.outputs["dashboardUrl"] == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        f"#dashboards:name={dashboard['dashboardName']}"
    )


def test_without_a_load_balancer_its_alarms_and_widgets_are_left_out() -> None:
    run = monitoring(load_balancer_arn_suffix=None, target_group_arn_suffix=None)
    assert set(alarms(run)) == ALL_ALARMS - {
        "mon-alb-5xx",
        "mon-target-5xx",
        "mon-unhealthy-targets",
        "mon-latency-p99",
    }
    assert (
        "ApplicationELB"
        not in run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"]
    )


def test_a_deep_pause_alarms_on_nothing_it_stopped() -> None:
    """Coordinator at zero and a stopped database: their alarms would only cost money."""
    run = monitoring(load_balancer_arn_suffix=None, target_group_arn_suffix=None, paused=True)
    assert alarms(run) == {}
    assert run.one("aws:sns/topic:Topic")


def test_preview_evaluates() -> None:
    run = monitoring(preview=True)
    assert len(alarms(run)) == len(ALL_ALARMS)


def test_a_booting_instance_is_no_incident_but_a_sick_one_is() -> None:
    """Each morning's resume and each instance refresh bring instances that fail /health until
    they are up (the group's grace allows 300 s): the alarm needs longer than that, unbroken."""
    run = evaluated("prod")
    grace = run.one("aws:autoscaling/group:Group").inputs["healthCheckGracePeriod"]
    alarm = run.named("streamr-prod-monitoring-unhealthy-targets").inputs
    assert alarm["evaluationPeriods"] == alarm["datapointsToAlarm"]
    assert alarm["datapointsToAlarm"] * alarm["period"] >= grace + 300
    # The others keep their quicker 3-of-5-minutes rule.
    errors = run.named("streamr-prod-monitoring-target-5xx").inputs
    assert (errors["evaluationPeriods"], errors["datapointsToAlarm"]) == (5, 3)
