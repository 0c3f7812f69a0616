"""What the headline benchmarks and the studies share: how their servers are started
(`servers`; tests/servers.py starts them), the closed-loop load and the greedy serving load
(`load`), the held-out and calibration problems (`problems`), the chat requests that ask a
strategy to solve them and what each answer measured (`chat`), and the figures (`plots`)."""
