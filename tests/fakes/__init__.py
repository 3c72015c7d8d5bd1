"""Local fakes of the services accessbot talks to, for integration tests and benchmarks."""
