"""Headscale (mesh control server) configuration, ACL policy and host bootstrap."""
