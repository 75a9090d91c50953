"""The composition root: the per-process runtime, the Celery app and its thin tasks, the
broker transport.
"""
