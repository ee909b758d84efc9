"""Alarms that notify someone, and a dashboard for the coordinator, its load balancer and database.

It receives the names it watches (load balancer and target group ARN suffixes, the auto scaling
group, the database identifier) as inputs and imports nothing from the components that own them.
Every alarm notifies the SNS topic when it fires and when it clears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# Memory per RDS instance class (GiB): RDS sets max_connections to about memory / 9531392 bytes.
DB_CLASS_MEMORY_GIB = {
    "micro": 1,
    "small": 2,
    "medium": 4,
    "large": 8,
    "xlarge": 16,
}
R_CLASS_MEMORY_GIB = {"large": 16, "xlarge": 32}
GIB = 1024**3


def database_connection_limit(instance_class: str) -> int:
    """RDS's default `max_connections` for PostgreSQL on this instance class."""
    family, size = instance_class.split(".")[1], instance_class.split(".")[2]
    memory = (R_CLASS_MEMORY_GIB if family.startswith("r") else DB_CLASS_MEMORY_GIB).get(size)
    if memory is None:
        raise ValueError(f"unknown RDS instance class {instance_class!r}")
    return min(memory * GIB // 9531392, 5000)


@dataclass
class MonitoringArgs:
    autoscaling_group_name: pulumi.Input[str]
    database_identifier: pulumi.Input[str]
    database_instance_class: str
    database_storage_gb: int
    tags: Mapping[str, str]
    # None on a deep pause (no load balancer): its alarms and widgets are left out.
    load_balancer_arn_suffix: pulumi.Input[str] | None = None
    target_group_arn_suffix: pulumi.Input[str] | None = None
    # The coordinator's log group, shown on the dashboard.
    log_group_name: pulumi.Input[str] | None = None
    alert_email: str | None = None
    # Deep pause: the coordinator is at zero and the database stopped; nothing to alarm on.
    paused: bool = False
    latency_p99_seconds: float = 1.0
    cpu_percent: int = 80
    # The auto scaling group's health-check grace: how long a booting instance (each morning's
    # resume, each instance refresh) may fail its health check without being a problem.
    health_check_grace_seconds: int = 300


@dataclass(frozen=True)
class AlarmSpec:
    purpose: str
    description: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str
    comparison: str
    threshold: float
    missing_data: str = "notBreaching"
    # Compare against another metric of the same resource instead of a fixed number: the alarm
    # fires when `metric - baseline` crosses `threshold`.
    baseline_metric: str | None = None
    # Fires when `breaching` of the last `minutes` one-minute periods cross the threshold.
    minutes: int = 5
    breaching: int = 3

    @property
    def percentile(self) -> bool:
        return self.statistic.startswith("p")


def alarm_specs(args: MonitoringArgs) -> list[AlarmSpec]:
    """What is watched and when it fires (a decision, no resources)."""
    above, below = "GreaterThanThreshold", "LessThanThreshold"
    asg = {"AutoScalingGroupName": args.autoscaling_group_name}
    database = {"DBInstanceIdentifier": args.database_identifier}
    specs = []
    if args.load_balancer_arn_suffix is not None and args.target_group_arn_suffix is not None:
        balancer = {"LoadBalancer": args.load_balancer_arn_suffix}
        target = {**balancer, "TargetGroup": args.target_group_arn_suffix}
        elb = "AWS/ApplicationELB"
        unhealthy_minutes = -(-args.health_check_grace_seconds // 60) + 5
        specs += [
            AlarmSpec("alb-5xx", "The load balancer itself answers 5xx", elb,
                      "HTTPCode_ELB_5XX_Count", balancer, "Sum", above, 10),
            AlarmSpec("target-5xx", "The coordinator answers 5xx", elb,
                      "HTTPCode_Target_5XX_Count", balancer, "Sum", above, 10),
            # Only unhealthy for longer than a booting instance may be (the group's grace plus
            # five minutes): a resume or an instance refresh is not an incident.
            AlarmSpec("unhealthy-targets", "A coordinator instance fails its /health check", elb,
                      "UnHealthyHostCount", target, "Maximum", above, 0,
                      minutes=unhealthy_minutes, breaching=unhealthy_minutes),
            AlarmSpec("latency-p99", "Slowest 1% of coordinator responses", elb,
                      "TargetResponseTime", balancer, "p99", above, args.latency_p99_seconds),
        ]  # fmt: skip
    if args.paused:
        return specs
    connection_limit = database_connection_limit(args.database_instance_class)
    specs += [
        # Against the group's own minimum, so a stop schedule that lowers it to 0 is no alarm.
        AlarmSpec("in-service", "Fewer coordinator instances in service than the minimum",
                  "AWS/AutoScaling", "GroupInServiceInstances", asg, "Minimum", below, 0,
                  missing_data="breaching", baseline_metric="GroupMinSize"),
        AlarmSpec("status-checks", "A coordinator instance fails its EC2 status checks",
                  "AWS/EC2", "StatusCheckFailed", asg, "Maximum", above, 0),
        AlarmSpec("db-cpu", "Database CPU", "AWS/RDS", "CPUUtilization", database, "Average",
                  above, args.cpu_percent),
        AlarmSpec("db-free-storage", "Less than 10% of the database's storage is free",
                  "AWS/RDS", "FreeStorageSpace", database, "Minimum", below,
                  args.database_storage_gb * GIB // 10),
        AlarmSpec("db-connections", "Database connections above 80% of max_connections",
                  "AWS/RDS", "DatabaseConnections", database, "Maximum", above,
                  connection_limit * 8 // 10),
    ]  # fmt: skip
    return specs


class Monitoring(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

        # Not KMS-encrypted: CloudWatch alarms cannot publish to a topic under the AWS-managed
        # SNS key, and alerts carry no secrets.
        topic = aws.sns.Topic(
            f"{name}-alerts", tags=_tagged(args.tags, f"{name}-alerts"), opts=child
        )
        if args.alert_email:
            aws.sns.TopicSubscription(
                f"{name}-alerts-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alert_email,
                opts=child,
            )

        for spec in alarm_specs(args):
            measured = _measurement(spec)
            aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.purpose}",
                alarm_description=spec.description,
                **measured,
                evaluation_periods=spec.minutes,
                datapoints_to_alarm=spec.breaching,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                treat_missing_data=spec.missing_data,
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                tags=_tagged(args.tags, f"{name}-{spec.purpose}"),
                opts=child,
            )

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{name}-dashboard",
            dashboard_body=pulumi.Output.json_dumps(_dashboard_body(args, region)),
            opts=child,
        )
        self.topic_arn = topic.arn
        self.dashboard_url = pulumi.Output.concat(
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}",
            "#dashboards:name=",
            dashboard.dashboard_name,
        )
        self.register_outputs({"topicArn": self.topic_arn, "dashboardUrl": self.dashboard_url})


def _measurement(spec: AlarmSpec) -> dict[str, Any]:
    """The alarm's metric arguments: one metric, or the difference from its baseline metric."""
    if spec.baseline_metric is None:
        return {
            "namespace": spec.namespace,
            "metric_name": spec.metric,
            "dimensions": dict(spec.dimensions),
            "statistic": None if spec.percentile else spec.statistic,
            "extended_statistic": spec.statistic if spec.percentile else None,
            "period": 60,
        }

    def query(query_id: str, metric: str) -> dict[str, Any]:
        return {
            "id": query_id,
            "return_data": False,
            "metric": {
                "namespace": spec.namespace,
                "metric_name": metric,
                "dimensions": dict(spec.dimensions),
                "stat": spec.statistic,
                "period": 60,
            },
        }

    return {
        "metric_queries": [
            query("measured", spec.metric),
            query("baseline", spec.baseline_metric),
            {"id": "difference", "expression": "measured - baseline", "return_data": True},
        ]
    }


def _dashboard_body(args: MonitoringArgs, region: str) -> dict[str, Any]:
    def metric_widget(title: str, metrics: list[list[Any]], stat: str) -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "stat": stat,
                "period": 60,
                "metrics": metrics,
            },
        }

    asg = ["AutoScalingGroupName", args.autoscaling_group_name]
    database = ["DBInstanceIdentifier", args.database_identifier]
    widgets = []
    if args.load_balancer_arn_suffix is not None:
        balancer = ["LoadBalancer", args.load_balancer_arn_suffix]
        widgets += [
            metric_widget(
                "Requests and errors",
                [
                    ["AWS/ApplicationELB", "RequestCount", *balancer],
                    ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", *balancer],
                    ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", *balancer],
                ],
                "Sum",
            ),
            metric_widget(
                "Response time p99 (s)",
                [["AWS/ApplicationELB", "TargetResponseTime", *balancer]],
                "p99",
            ),
        ]
    widgets += [
        metric_widget(
            "Coordinator instances",
            [
                ["AWS/AutoScaling", "GroupInServiceInstances", *asg],
                ["AWS/AutoScaling", "GroupDesiredCapacity", *asg],
            ],
            "Average",
        ),
        metric_widget("Coordinator CPU %", [["AWS/EC2", "CPUUtilization", *asg]], "Average"),
        metric_widget(
            "Database",
            [
                ["AWS/RDS", "CPUUtilization", *database],
                ["AWS/RDS", "DatabaseConnections", *database],
            ],
            "Average",
        ),
        metric_widget(
            "Database free storage (bytes)",
            [["AWS/RDS", "FreeStorageSpace", *database]],
            "Minimum",
        ),
    ]
    if args.log_group_name is not None:
        widgets.append(
            {
                "type": "log",
                "width": 24,
                "height": 6,
                "properties": {
                    "title": "Coordinator errors",
                    "region": region,
                    "query": pulumi.Output.concat(
                        "SOURCE '",
                        args.log_group_name,
                        "' | fields @timestamp, @message"
                        " | filter @message like /ERROR/ | sort @timestamp desc | limit 50",
                    ),
                },
            }
        )
    return {"widgets": widgets}


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}
