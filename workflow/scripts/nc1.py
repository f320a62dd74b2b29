"""Neural collapse of one split's L2-normalised embeddings: NC1 (and nc1_paper), VCI, traces,
ranks, CDNV and the NC2 geometry of the class means."""

import numpy as np
import pandas as pd

from imprint.io import log_to, with_provenance, write_table
from imprint.method.collapse import collapse_metrics
from imprint.study.experiments import load_embeddings
from imprint.study.tasks import select_task

with log_to(snakemake.log[0]):
    w = snakemake.wildcards
    x, y = select_task(
        *load_embeddings(snakemake.input[w.split]), w.mapping, w.task, snakemake.params.label_table
    )
    x = np.asarray(x, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    keys = {"fm": w.fm, "dataset": w.dataset, "split": w.split, "mapping": w.mapping}
    row = {**keys, "task": w.task, **collapse_metrics(x, y)}
    print(row)
    write_table(with_provenance(pd.DataFrame([row]), dict(w)), snakemake.output[0])
