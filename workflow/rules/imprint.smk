# Sweep shards: one job per (experiment, FM, data set, label mapping, task split), or per part
# of one where the job budget (config job_budget, imprint.study.cost) splits it.


rule sweep_shard:
    input:
        unpack(embedding_inputs(["train", "test"])),
    output:
        "results/runs/{experiment}/{fm}/{dataset}/{mapping}/{task}{part}.parquet",
    log:
        "logs/imprint/{experiment}/{fm}_{dataset}_{mapping}_{task}{part}.log",
    conda:
        "../../envs/imprint.yaml"
    resources:
        gpu=lambda wildcards: gpus(config.get("sweep_device") == "cuda"),
        runtime=sweep_minutes,
        mem_mb=8000,
    params:
        experiment=lambda wildcards: canonical(
            shard_spec(config["experiments"][wildcards.experiment])
        ),
        lambda_reg=lambda wildcards: config["fms"][wildcards.fm]["lambda_reg"],
        device=config.get("sweep_device", "cpu"),
        part=sweep_part,
        label_table=label_table,
    script:
        "../scripts/sweep_shard.py"


rule gather_runs:
    input:
        lambda wildcards: shards(wildcards.experiment),
    output:
        "results/runs/{experiment}.parquet",
    log:
        "logs/imprint/{experiment}_gather.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/gather_tables.py"
