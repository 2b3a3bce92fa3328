"""The project's own error types: every failure a user can cause names its source."""


class SelftrainError(Exception):
    """Base of every error selftrain raises on purpose (bad config, bad data, bad state)."""


class ConfigError(SelftrainError):
    """A params value is unknown, of the wrong type or out of range; the message names the key path."""


class DataError(SelftrainError):
    """Input data is missing or malformed; the message names the file, the column or the row."""


class ModelError(SelftrainError):
    """A checkpoint does not match what the caller expects (architecture, classes)."""


class TrainingError(SelftrainError):
    """Training cannot go on (non-finite loss, nothing to learn from)."""


# Exit status of a stage stopped by one of these errors or by a missing file: the same
# input fails the same way again, so the flow does not retry it. Other failures (a
# crash, a killed process) exit 1 and are retried.
EXIT_INPUT_ERROR = 3
