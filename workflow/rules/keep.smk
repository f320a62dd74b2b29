# Kept classifiers (config keep): a named method imprinted on a task's whole training set, saved
# with its FM for `python -m imprint predict` and `add-classes` (imprint.deploy.keep).


rule keep_model:
    input:
        unpack(keep_inputs),
    output:
        model="results/models/{model}.pt",
        info="results/models/{model}.json",
    log:
        "logs/models/{model}.log",
    wildcard_constraints:
        model="|".join(kept_models(config)) or "(?!)",
    conda:
        "../../envs/imprint.yaml"
    resources:
        runtime=30,
        mem_mb=8000,
    params:
        entry=lambda wildcards: kept_models(config)[wildcards.model],
        lambda_reg=lambda wildcards: config["fms"][kept_entry(wildcards)["fm"]][
            "lambda_reg"
        ],
        fm=lambda wildcards: dataclasses.asdict(fm_of(kept_entry(wildcards)["fm"])),
        label_table=lambda wildcards: catalog().label_table(
            kept_entry(wildcards)["mapping"],
            kept_entry(wildcards)["fm"],
            kept_entry(wildcards)["dataset"],
        ),
        class_names=kept_class_names,
    script:
        "../scripts/keep_model.py"
