# Neural collapse (NC1) of L2-normalised embeddings of one split (training; ImageNet: val).


rule nc1:
    input:
        unpack(embedding_inputs()),
    output:
        "results/collapse/{fm}/{dataset}/{split}/{mapping}/{task}.csv",
    log:
        "logs/collapse/{fm}_{dataset}_{split}_{mapping}_{task}.log",
    conda:
        "../../envs/imprint.yaml"
    resources:
        runtime=30,
        mem_mb=8000,
    params:
        label_table=label_table,
    script:
        "../scripts/nc1.py"


rule nc1_table:
    input:
        collapse_entries(),
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
    script:
        "../scripts/gather_tables.py"
