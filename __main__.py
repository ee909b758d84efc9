"""Composition root: typed stack config -> components -> stack outputs."""

import pulumi

import program
from stack_config import StackConfig

for output_name, value in program.build(StackConfig.load()).items():
    pulumi.export(output_name, value)
