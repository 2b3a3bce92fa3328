"""selftrain: iterative noisy-student self-training as DVC stages chained by Prefect."""

__version__ = "0.1.0"
