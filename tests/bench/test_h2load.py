"""Reading h2load's per-request log and summary (h2load itself is not run here)."""

from bench import h2load

SUMMARY = """finished in 10.00s, 199.90 req/s, 30.00KB/s
requests: 4 total, 4 started, 4 done, 3 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 3 2xx, 0 3xx, 0 4xx, 0 5xx
time for connect:      123us      4.13ms       52us       20us    96.20%
"""
LOG = "0\t200\t1000\n5000\t200\t2000\n10000\t200\t3000\n15000\t-1\t9000\n"


def test_a_broken_request_counts_as_an_error_with_h2load_s_account_of_it() -> None:
    figures = h2load.figures(LOG, SUMMARY)
    assert figures.errors == 1
    assert (figures.p50_ms, figures.max_ms) == (2.0, 3.0)  # the broken request has no latency
    assert figures.failures == (
        "requests: 4 total, 4 started, 4 done, 3 succeeded, 1 failed, 1 errored, 0 timeout; "
        "status codes: 3 2xx, 0 3xx, 0 4xx, 0 5xx"
    )


def test_a_clean_run_has_no_failures_to_tell() -> None:
    clean = SUMMARY.replace("3 succeeded, 1 failed, 1 errored", "4 succeeded, 0 failed, 0 errored")
    figures = h2load.figures(LOG.replace("\t-1\t", "\t200\t"), clean)
    assert (figures.errors, figures.failures) == (0, "")
    assert figures.max_ms == 9.0
