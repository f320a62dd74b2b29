# The paper's Table 1 and figures.


rule table1:
    input:
        runs_of(config["figures"].get("table1", [])),
    output:
        md=report(
            "results/tables/table1.md",
            caption="../report/table1.rst",
            category="Tables",
        ),
        csv="results/tables/table1.csv",
        tex="results/tables/table1.tex",
    log:
        "logs/plots/table1.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/table1.py"


rule figure:
    input:
        runs=lambda wildcards: runs_of(config["figures"][wildcards.figure]),
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Figures",
        ),
        png="results/figures/{figure}.png",
    log:
        "logs/plots/{figure}.log",
    wildcard_constraints:
        figure="fig6|fig10|fig11b",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figure.py"


rule fig11a:
    input:
        "results/tables/nc1.csv",
    output:
        pdf=report(
            "results/figures/fig11a.pdf",
            caption="../report/fig11a.rst",
            category="Figures",
        ),
        png="results/figures/fig11a.png",
    log:
        "logs/plots/fig11a.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figure.py"


rule collapse_metrics:
    input:
        "results/tables/nc1.csv",
    output:
        pdf=report(
            "results/figures/collapse_metrics.pdf",
            caption="../report/collapse_metrics.rst",
            category="Neural collapse",
        ),
        png="results/figures/collapse_metrics.png",
    log:
        "logs/plots/collapse_metrics.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figure.py"


rule fig12:
    input:
        runs=runs_of(config["figures"].get("fig12", [])),
        collapse="results/tables/nc1.csv",
    output:
        pdf=report(
            "results/figures/fig12.pdf",
            caption="../report/fig12.rst",
            category="Figures",
        ),
        png="results/figures/fig12.png",
        correlations=report(
            "results/tables/fig12_correlations.csv",
            caption="../report/fig12_correlations.rst",
            category="Neural collapse",
        ),
    log:
        "logs/plots/fig12.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/figure.py"
