"""Store one split of precomputed embeddings as the workflow's own, after checking them."""

from imprint.fms.own_data import read_embeddings
from imprint.fms.store import save_embeddings
from imprint.io import log_to

with log_to(snakemake.log[0]):
    x, y = read_embeddings(snakemake.params.arrays)
    print(f"{len(x)} embeddings of dimension {x.shape[1]}, {len(set(y.tolist()))} classes")
    save_embeddings(snakemake.output.embeddings, x, y, precision="precomputed")
