"""Issue 20, TLS: prod serves the coordinator over HTTPS only (plain HTTP just redirects), with a
certificate the program issues and DNS-validates in the configured Route 53 zone or one named by
its ARN; the policy pack fails a prod stack without HTTPS. Issue 18, findings 8/9: prod needs a
domain of its own, and names reserved for documentation are refused."""

from __future__ import annotations

import dataclasses

import pytest

from offline.harness import UNKNOWN, ProgramFailed, ProgramRun, run_program
from offline.policy_check import check
from stack_config import StackConfigError
from tests.infra.support import evaluated

LISTENER = "aws:lb/listener:Listener"
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c2d3e-0000-4000-8000-123456789abc"
ZONE = "Z0DOCUMENTATION0EXAMPLE"  # offline.harness.DOCUMENTATION_VALUES


def listeners(run: ProgramRun) -> dict[str, dict]:
    return {listener.inputs["protocol"]: listener.inputs for listener in run.of_type(LISTENER)}


def only_redirects_to_https(listener: dict) -> bool:
    actions = listener["defaultActions"]
    return bool(actions) and all(
        action["type"] == "redirect" and action["redirect"]["protocol"] == "HTTPS"
        for action in actions
    )


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_http_listener_in_prod_serves_anything_but_a_redirect(stack: str, preview: bool) -> None:
    run = evaluated(stack, preview=preview)
    found = listeners(run)
    if stack == "prod":
        assert set(found) == {"HTTP", "HTTPS"}
        assert only_redirects_to_https(found["HTTP"])
        assert found["HTTPS"]["port"] == 443
        assert found["HTTPS"]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
        assert found["HTTPS"]["defaultActions"][0]["type"] == "forward"
    else:  # dev, without a domain of its own, serves HTTP (see the README for what that risks)
        assert set(found) == {"HTTP"}
        assert found["HTTP"]["defaultActions"][0]["type"] == "forward"


def test_with_a_hosted_zone_the_program_issues_and_dns_validates_the_certificate(
    prod: ProgramRun,
) -> None:
    certificate = prod.one("aws:acm/certificate:Certificate")
    assert certificate.inputs["domainName"] == "stream.example.org"
    assert certificate.inputs["validationMethod"] == "DNS"
    option = certificate.outputs["domainValidationOptions"][0]
    records = {r.name: r for r in prod.of_type("aws:route53/record:Record")}
    validation_record = records["streamr-prod-web-certificate-validation"].inputs
    assert validation_record["zoneId"] == ZONE
    assert validation_record["name"] == option["resourceRecordName"]
    assert validation_record["type"] == "CNAME"
    assert validation_record["records"] == [option["resourceRecordValue"]]
    validated = prod.one("aws:acm/certificateValidation:CertificateValidation")
    assert validated.inputs["certificateArn"] == certificate.outputs["arn"]
    assert validated.inputs["validationRecordFqdns"] == [
        records["streamr-prod-web-certificate-validation"].outputs["fqdn"]
    ]
    # The listener takes the certificate from the validation: it waits until ACM has issued it.
    https = listeners(prod)["HTTPS"]
    assert https["certificateArn"] == certificate.outputs["arn"]
    (secure,) = [r for r in prod.of_type(LISTENER) if r.inputs["protocol"] == "HTTPS"]
    assert validated.urn in secure.dependencies
    # ... and the domain points at the load balancer.
    alias = records["streamr-prod-web-dns"].inputs
    balancer = prod.one("aws:lb/loadBalancer:LoadBalancer").outputs
    assert (alias["name"], alias["type"], alias["zoneId"]) == ("stream.example.org", "A", ZONE)
    assert alias["aliases"][0]["name"] == balancer["dnsName"]
    assert alias["aliases"][0]["zoneId"] == balancer["zoneId"]
    assert prod.outputs["coordinatorUrl"] == "https://stream.example.org"


def test_the_certificate_sits_beside_the_load_balancer_and_moves_there_from_inside_it(
    prod: ProgramRun,
) -> None:
    """A deep pause deletes the load balancer; the certificate outlives it in a component of its
    own (tests/infra/test_stable_endpoints.py). A stack created when the load balancer held it
    keeps it: each of its three resources is aliased to that parent, by the engine's URN."""
    (component,) = prod.of_type("streamr:coordinator:Certificate")
    moved = [r for r in prod.resources if r.parent == component.urn]
    assert sorted(r.name for r in moved) == [
        "streamr-prod-web-certificate",
        "streamr-prod-web-certificate-validated",
        "streamr-prod-web-certificate-validation",
    ]
    old_parent = (
        "urn:pulumi:prod::streamr::streamr:coordinator:CoordinatorService"
        "$streamr:coordinator:LoadBalancer::streamr-prod-web"
    )
    assert all(r.alias_parents == {old_parent} for r in moved)


def test_a_certificate_arn_instead_of_a_zone_is_used_as_given() -> None:
    run = evaluated("prod", {"certificateArn": CERTIFICATE})
    assert run.documentation == {"streamr:domain": "stream.example.org"}
    assert listeners(run)["HTTPS"]["certificateArn"] == CERTIFICATE
    assert only_redirects_to_https(listeners(run)["HTTP"])
    assert not run.of_type("aws:acm/certificate:Certificate")
    assert not run.of_type("aws:route53/record:Record")


def test_in_preview_the_certificate_is_known_after_apply() -> None:
    run = evaluated("prod", preview=True)
    assert listeners(run)["HTTPS"]["certificateArn"] in (UNKNOWN, None)


def test_the_policy_pack_fails_a_prod_stack_without_https(prod: ProgramRun) -> None:
    assert not [v for v in check(prod) if v.policy.startswith("alb-https")]
    stripped = dataclasses.replace(
        prod,
        resources=[
            r
            for r in prod.resources
            if not (r.type == LISTENER and r.inputs["protocol"] == "HTTPS")
        ],
    )
    violations = [v for v in check(stripped) if v.enforcement == "mandatory"]
    assert [v.policy for v in violations] == ["alb-https-in-prod"]
    assert "has no HTTPS listener" in violations[0].message


def test_the_policy_pack_lets_dev_serve_plain_http(dev: ProgramRun) -> None:
    assert not [v for v in check(dev) if v.policy.startswith("alb-https")]
    # The same stack under a policy config that holds dev to prod's rule fails.
    stricter = {"alb-https-in-prod": {"stages": ["dev", "prod"]}}
    assert [v.policy for v in check(dev, stricter) if v.policy.startswith("alb-https")] == [
        "alb-https-in-prod"
    ]


def test_the_committed_prod_stack_needs_its_operators_domain() -> None:
    """Findings 8/9: the prod stack file holds no invented domain; without the operator's own
    the program stops before creating anything, naming the keys."""
    with pytest.raises(ProgramFailed) as failure:
        run_program("prod", documentation_values=False)
    error = failure.value.__cause__
    assert isinstance(error, StackConfigError)
    assert failure.value.resources == []
    assert any(
        problem.startswith("streamr:domain is required in prod") for problem in error.problems
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("domain", "stream.example.com"),
        ("domain", "example.net"),
        ("domain", "live.streamr.test"),
        ("acmeEmail", "ops@example.org"),
        ("alertEmail", "ops@alerts.example"),
        ("acmeEmail", "me@box.localhost"),
        ("alertEmail", "ops@streamr.invalid"),
    ],
)
def test_a_reserved_name_in_the_stack_file_is_refused_even_offline(key: str, value: str) -> None:
    """Only what the harness fills in itself may be a documentation name; the operator's own
    values are checked as `pulumi up` checks them."""
    with pytest.raises(ProgramFailed) as failure:
        run_program("prod", {key: value, "hostedZoneId": ZONE})
    error = failure.value.__cause__
    assert isinstance(error, StackConfigError)
    (problem,) = [p for p in error.problems if p.startswith(f"streamr:{key}:")]
    assert f"{value!r} is not allowed" in problem
    assert "RFC 2606" in problem
