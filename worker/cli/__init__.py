"""The ``msgworker`` command: parser and dispatch, the operator commands, their views and output."""
