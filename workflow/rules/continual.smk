# The class-incremental study (config continual; imprint.study.continual): every step's classes
# fed to partial_fit exemplar-free, tested on every class seen, beside the joint fit.


rule continual:
    input:
        unpack(continual_inputs),
    output:
        "results/continual/runs.parquet",
    log:
        "logs/continual/runs.log",
    conda:
        "../../envs/imprint.yaml"
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        study=lambda wildcards: canonical(config["continual"]),
        lambda_regs=lambda wildcards: {
            fm: config["fms"][fm]["lambda_reg"] for fm in config["continual"]["fms"]
        },
    script:
        "../scripts/continual.py"


rule continual_report:
    input:
        "results/continual/runs.parquet",
    output:
        md=report(
            "results/tables/continual.md",
            caption="../report/continual.rst",
            category="Tables",
        ),
        csv="results/tables/continual.csv",
        pdf=report(
            "results/figures/continual.pdf",
            caption="../report/continual.rst",
            category="Figures",
        ),
        png="results/figures/continual.png",
    log:
        "logs/plots/continual.log",
    conda:
        "../../envs/report.yaml"
    params:
        study=lambda wildcards: canonical(config["continual"]),
    script:
        "../scripts/continual_report.py"


rule continual_cd:
    input:
        "results/continual/runs.parquet",
    output:
        figure=report(
            "results/figures/continual_cd.pdf",
            caption="../report/continual_cd.rst",
            category="Figures",
        ),
        png="results/figures/continual_cd.png",
        pvalues="results/tables/continual_posthoc.csv",
    log:
        "logs/stats/continual_cd.log",
    conda:
        "../../envs/report.yaml"
    params:
        study=lambda wildcards: canonical(config["continual"]),
        alpha=config["statistics"]["alpha"],
        posthoc=config["statistics"]["posthoc"],
    script:
        "../scripts/continual_cd.py"
