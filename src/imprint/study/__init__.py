"""What a config asks for and what it costs: config checks, the catalog of FMs and data sets,
tasks and label mappings, grids, the named methods, experiments and their shards, the cost model."""
