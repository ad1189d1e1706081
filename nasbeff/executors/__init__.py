"""Executors: where units of work run (this process, local worker processes, Ray tasks), behind one
``map_units`` method. They know nothing of the domain.

Imports torch (thread counts) and, lazily, ray: nothing else of nasbeff.
"""

from .backends import BACKENDS, Backend, LocalBackend, ProcessBackend, RayBackend, check_backend, cpu_model, \
    make_backend, run_with_threads

__all__ = ["BACKENDS", "Backend", "LocalBackend", "ProcessBackend", "RayBackend", "check_backend", "cpu_model",
           "make_backend", "run_with_threads"]
