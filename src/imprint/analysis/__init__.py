"""What the runs mean: statistics (pools, ranks, tests), tables, critical-difference diagrams and
the paper's figures."""
