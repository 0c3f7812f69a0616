"""Keep the garbage collector's full passes off the start-up heap.

The API process holds ~780,000 objects once started (the modules of vLLM, torch, transformers,
sympy, pint and ours), nearly all alive for the process's life. Every full (generation 2) pass
walks all of them: 0.5-0.7 s on this machine's cores with the event loop stopped, which is what
a request arriving at that moment waits, a 429 included (measured during a 640-request burst:
benchmarks/results/admission.md). Freezing the heap once start-up is done moves those objects to
the permanent generation, which the collector never scans; what requests allocate afterwards is
collected as before. vLLM's engine core does the same after its own start-up
(vllm.v1.engine.core, `freeze_gc_heap`).

Only a process that serves one app for its life should freeze: a test process builds many apps,
and a frozen app's cycles are never collected.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left behind, then freeze every object still alive; returns how
    many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
