"""Offline evaluation of the Pulumi program: the mock harness and `make plan`."""
