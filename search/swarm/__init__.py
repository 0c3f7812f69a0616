"""The swarm strategy's parts that need no server: the tree of sub-problems (plan), the
decomposers that build it and integrate its answers, the router that picks a specialist for a
sub-problem, the runner that solves the tree, and Self-MoA's aggregation."""
