"""The floor what-if in a worker process: ``bench/overhead.py --floor`` puts this folder first on
its workers' PYTHONPATH, and Python imports this module as the process starts. msgworker's
scripts then take their ``floor`` argument: no rate-limit slot reserved, nothing learned from
the headers, no records of a sent job. The product never sets it.
"""

from worker.store.transitions import Transitions

Transitions.floor = True
