"""Throwaway local PostgreSQL and Redis, for the tests, the benchmarks and `make run`."""
