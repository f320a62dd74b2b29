"""Neural collapse of one split's L2-normalised embeddings under each mapping and task asked of
it: NC1 (and nc1_paper), VCI, traces, ranks, CDNV and the NC2 geometry of the class means."""

import logging

import numpy as np
import pandas as pd

from imprint.fms.store import degenerate, load_embeddings
from imprint.io import log_to, with_provenance, write_table
from imprint.method.collapse import collapse_metrics
from imprint.study.tasks import select_task

with log_to(snakemake.log[0]):
    w = snakemake.wildcards
    embeddings = load_embeddings(snakemake.input[w.split])
    rows = []
    for entry in snakemake.params.tasks:
        mapping, task = entry["mapping"], entry["task"]
        x, y = select_task(*embeddings, mapping, task, entry["label_table"])
        x = np.asarray(x, dtype=np.float32)
        kind = degenerate(x)
        warning = f"all {len(x)} embeddings are {kind}: NC1 means nothing here" if kind else ""
        if warning:
            logging.warning("%s %s %s %s: %s", w.fm, w.dataset, w.split, task, warning)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        keys = {"fm": w.fm, "dataset": w.dataset, "split": w.split, "mapping": mapping}
        rows.append({**keys, "task": task, **collapse_metrics(x, y), "warning": warning})
        print(rows[-1])
    table = pd.DataFrame(rows)
    write_table(
        with_provenance(table, {**dict(w), "tasks": snakemake.params.tasks}), snakemake.output[0]
    )
