# Statistics over groups (FM, data set, mapping, task): ranks, Friedman, post-hoc, CD diagrams.


rule cd_diagram:
    input:
        lambda wildcards: runs_of(cd_view(wildcards)["experiment"]),
    output:
        ranks="results/tables/ranks_{view}.csv",
        pvalues="results/tables/posthoc_{view}.csv",
        figure=report(
            "results/figures/cd_{view}.pdf",
            caption="../report/cd_diagram.rst",
            category="Critical difference diagrams",
        ),
        png="results/figures/cd_{view}.png",
    log:
        "logs/stats/cd_{view}.log",
    conda:
        "../../envs/report.yaml"
    params:
        view=lambda wildcards: canonical(cd_view(wildcards)),
        posthoc=config["statistics"].get("posthoc", "wilcoxon"),
        alpha=config["statistics"].get("alpha", 0.05),
    script:
        "../scripts/cd_diagram.py"
