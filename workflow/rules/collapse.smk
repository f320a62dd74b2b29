# Neural collapse (NC1) of L2-normalised embeddings of one split (training; ImageNet: val), for
# every mapping and task the config's collapse blocks ask of it, in one job per FM, data set and
# split.


rule nc1:
    input:
        unpack(split_embeddings),
    output:
        "results/collapse/{fm}/{dataset}/{split}.csv",
    log:
        "logs/collapse/{fm}_{dataset}_{split}.log",
    conda:
        "../../envs/imprint.yaml"
    resources:
        runtime=30,
        mem_mb=8000,
    params:
        tasks=collapse_tasks,
    script:
        "../scripts/nc1.py"


rule nc1_table:
    input:
        collapse_files(),
    output:
        report(
            "results/tables/nc1.csv",
            caption="../report/nc1.rst",
            category="Neural collapse",
        ),
    log:
        "logs/collapse/nc1_table.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        order=lambda wildcards: {
            "columns": ["fm", "dataset", "split", "mapping", "task"],
            "rows": [list(entry) for entry in collapse_entries(config)],
        },
    script:
        "../scripts/gather_tables.py"
