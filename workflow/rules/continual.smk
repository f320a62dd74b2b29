# The class-incremental studies (config continual, by name; imprint.study.continual): every
# step's classes fed to partial_fit exemplar-free, tested on every class seen, beside the joint
# fit.


rule continual:
    input:
        unpack(continual_inputs),
    output:
        "results/continual/{study}/runs.parquet",
    log:
        "logs/continual/{study}.log",
    wildcard_constraints:
        study="[a-z0-9_]+",
    conda:
        "../../envs/imprint.yaml"
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        study=lambda wildcards: canonical(continual_study(wildcards)),
        lambda_regs=lambda wildcards: {
            fm: config["fms"][fm]["lambda_reg"]
            for fm in continual_study(wildcards)["fms"]
        },
    script:
        "../scripts/continual.py"


rule continual_report:
    input:
        "results/continual/{study}/runs.parquet",
    output:
        md=report(
            "results/tables/continual/{study}.md",
            caption="../report/continual.rst",
            category="Tables",
        ),
        csv="results/tables/continual/{study}.csv",
        pdf=report(
            "results/figures/continual/{study}.pdf",
            caption="../report/continual.rst",
            category="Figures",
        ),
        png="results/figures/continual/{study}.png",
    log:
        "logs/plots/continual_{study}.log",
    wildcard_constraints:
        study="[a-z0-9_]+",
    conda:
        "../../envs/report.yaml"
    params:
        study=lambda wildcards: canonical(continual_study(wildcards)),
    script:
        "../scripts/continual_report.py"


rule continual_cd:
    input:
        "results/continual/{study}/runs.parquet",
    output:
        figure=report(
            "results/figures/continual_cd/{study}.pdf",
            caption="../report/continual_cd.rst",
            category="Figures",
        ),
        png="results/figures/continual_cd/{study}.png",
        pvalues="results/tables/continual_posthoc/{study}.csv",
    log:
        "logs/stats/continual_cd_{study}.log",
    wildcard_constraints:
        study="[a-z0-9_]+",
    conda:
        "../../envs/report.yaml"
    params:
        study=lambda wildcards: canonical(continual_study(wildcards)),
        alpha=config["statistics"]["alpha"],
        posthoc=config["statistics"]["posthoc"],
    script:
        "../scripts/continual_cd.py"
