"""Pulumi components: one ComponentResource per module, meeting only in program.py."""
