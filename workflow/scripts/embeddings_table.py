"""One row per embeddings file the workflow read: samples, dimension, classes, precision, and a
warning where all its embeddings are zero or identical (a broken model or data)."""

import logging

import numpy as np
import pandas as pd

from imprint.fms.store import degenerate, embeddings_precision, open_embeddings
from imprint.io import log_to, write_table

with log_to(snakemake.log[0]):
    rows = []
    for fm, dataset, split in snakemake.params.entries:
        path = snakemake.input[f"{split}_{fm}_{dataset}"][0]
        x, y = open_embeddings(path)
        kind = degenerate(np.asarray(x))
        warning = f"all {kind}: a broken model or data?" if kind else ""
        if warning:
            logging.getLogger("imprint").warning("%s: %s", path, warning)
        rows.append(
            {"fm": fm, "dataset": dataset, "split": split, "samples": len(x),
             "dim": x.shape[1], "classes": len(np.unique(y)),
             "precision": embeddings_precision(path), "warning": warning}
        )  # fmt: skip
    table = pd.DataFrame(rows)
    print(table.to_string())
    write_table(table, snakemake.output[0])
