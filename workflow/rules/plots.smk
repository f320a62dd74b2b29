# The paper's Table 1 and figures; each figure also writes the numbers it plots to
# results/tables/<figure>.csv (workflow/scripts/figure.py, imprint.analysis.figures).


rule table1:
    input:
        lambda wildcards: runs_of(table1_view()["experiment"]),
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
    params:
        view=lambda wildcards: canonical(table1_view()),
        settings=canonical(config["statistics"].get("table1", {})),
    script:
        "../scripts/table1.py"


rule figure:
    input:
        runs=lambda wildcards: figure_runs(wildcards.figure),
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Figures",
        ),
        png="results/figures/{figure}.png",
        csv="results/tables/{figure}.csv",
    log:
        "logs/plots/{figure}.log",
    wildcard_constraints:
        figure="fig10|fig11b|figA8",
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wildcards: figure_params(wildcards.figure),
    script:
        "../scripts/figure.py"


rule fig6:
    input:
        runs=lambda wildcards: figure_runs("fig6"),
    output:
        pdf=report(
            "results/figures/fig6.pdf",
            caption="../report/fig6.rst",
            category="Figures",
        ),
        png="results/figures/fig6.png",
        grid=report(
            "results/figures/fig6_grid.pdf",
            caption="../report/fig6_grid.rst",
            category="Figures",
        ),
        grid_png="results/figures/fig6_grid.png",
        csv="results/tables/fig6.csv",
    log:
        "logs/plots/fig6.log",
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wildcards: figure_params("fig6"),
    script:
        "../scripts/figure.py"


rule collapse_figure:
    input:
        collapse="results/tables/nc1.csv",
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/collapse_figure.rst",
            category="Neural collapse",
        ),
        png="results/figures/{figure}.png",
        csv="results/tables/{figure}.csv",
    log:
        "logs/plots/{figure}.log",
    wildcard_constraints:
        figure="fig11a|collapse_metrics",
    conda:
        "../../envs/report.yaml"
    params:
        settings={"metric": config.get("nc1_metric", "nc1")},
    script:
        "../scripts/figure.py"


rule fig12:
    input:
        runs=lambda wildcards: figure_runs("fig12"),
        collapse="results/tables/nc1.csv",
    output:
        pdf=report(
            "results/figures/fig12.pdf",
            caption="../report/fig12.rst",
            category="Figures",
        ),
        png="results/figures/fig12.png",
        csv="results/tables/fig12.csv",
        fit=report(
            "results/tables/fig12_fit.csv",
            caption="../report/fig12_fit.rst",
            category="Neural collapse",
        ),
    log:
        "logs/plots/fig12.log",
    conda:
        "../../envs/report.yaml"
    params:
        settings={"metric": config.get("nc1_metric", "nc1")},
    script:
        "../scripts/figure.py"


rule gen_time:
    input:
        runs=lambda wildcards: figure_runs("gen_time"),
    output:
        pdf=report(
            "results/figures/gen_time.pdf",
            caption="../report/gen_time.rst",
            category="Figures",
        ),
        png="results/figures/gen_time.png",
        csv="results/tables/gen_time.csv",
        summary="results/tables/gen_time_summary.csv",
    log:
        "logs/plots/gen_time.log",
    conda:
        "../../envs/report.yaml"
    params:
        settings={},
    script:
        "../scripts/figure.py"


rule paper_comparison:
    input:
        [f"results/tables/{table}.csv" for table in config.get("published", {})],
    output:
        md=report(
            "results/tables/paper_comparison.md",
            caption="../report/paper_comparison.rst",
            category="Tables",
        ),
        csv="results/tables/paper_comparison.csv",
    log:
        "logs/plots/paper_comparison.log",
    conda:
        "../../envs/report.yaml"
    params:
        published=canonical(config.get("published", {})),
    script:
        "../scripts/paper_comparison.py"
