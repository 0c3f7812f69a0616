"""Admission control: bounded work in flight and a bounded queue, counted by cost.

A request costs the tokens it is expected to spend (cost.py), never more than it may make the
engine generate. Each lane (single passes, searches; lane.py) admits requests first come first
served while their costs fit its capacity, queues the rest up to a bound, and refuses the
excess with 429 and a Retry-After; its capacity, queue and drain rate follow what the engine
sustains (capacity.py). The lanes are apart so that searches, which cost tens to hundreds of
times more, never hold back single passes. A request holds a `Ticket` (control.py) from its
admission to its end, reconciled then with what it spent.
"""

from server.admission.control import Admission, Ticket
from server.admission.cost import CostEstimator, Shape
from server.admission.lane import SEARCH, SINGLE, Lane, Overloaded

__all__ = ["SEARCH", "SINGLE", "Admission", "CostEstimator", "Lane", "Overloaded", "Shape",
           "Ticket"]
