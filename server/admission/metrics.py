"""Admission's Prometheus series (deliberate_admission_*)."""

from prometheus_client import Counter, Gauge, Histogram

IN_FLIGHT = Gauge("deliberate_admission_in_flight_cost",
                  "Cost (tokens) of the requests running, per lane", ["lane"])
QUEUED = Gauge("deliberate_admission_queued_cost",
               "Cost (tokens) of the requests waiting to start, per lane", ["lane"])
RUNNING = Gauge("deliberate_admission_running_requests", "Requests running, per lane", ["lane"])
WAITING = Gauge("deliberate_admission_waiting_requests", "Requests waiting, per lane", ["lane"])
REJECTED = Counter("deliberate_admission_rejected",
                   "Requests refused with 429, per lane and reason (queue_full, queue_wait, "
                   "queue_timeout)",
                   ["lane", "reason"])
WAIT = Histogram("deliberate_admission_wait_seconds", "Time from arrival to start, per lane",
                 ["lane"], buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60))
EXPECTED_COST = Gauge("deliberate_admission_expected_cost",
                      "Expected spend (tokens) the last request of a strategy was admitted at, "
                      "as learned from the requests that finished", ["strategy"])
CAPACITY = Gauge("deliberate_admission_capacity",
                 "Expected spend (tokens) a lane runs at once: fixed, or from its drain rate",
                 ["lane"])
QUEUE_LIMIT = Gauge("deliberate_admission_queue_limit",
                    "Expected spend (tokens) a lane queues: fixed, or from its drain rate",
                    ["lane"])
DRAIN_RATE = Gauge("deliberate_admission_drain_rate",
                   "Tokens per second a lane's requests spend while it is busy (measured over "
                   "the last minute; before that, its capacity over the target delay)", ["lane"])
