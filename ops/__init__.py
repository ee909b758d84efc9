"""Pause and resume this stack's AWS resources, and price the platform per mode.

Runs inside Lambda, so it needs only the standard library and boto3.
"""
