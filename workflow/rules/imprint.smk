# Sweeps: a shard is the runs of one (experiment, FM, data set, label mapping, task split). One
# job sweeps a pack of consecutive shards of an FM and data set that fit the job budget together
# (config job_budget, imprint.study.cost), or one part of a shard the budget splits.


rule sweep_shard:
    input:
        unpack(embedding_inputs(["train", "test"])),
    output:
        "results/runs/{experiment}/{fm}/{dataset}/pack{pack}.parquet",
    log:
        "logs/imprint/{experiment}/{fm}_{dataset}_pack{pack}.log",
    conda:
        "../../envs/imprint.yaml"
    resources:
        gpu=sweep_gpus(shared=False),
        gpu_share=sweep_gpus(shared=True),
        runtime=sweep_minutes,
        mem_mb=8000,
    params:
        experiment=lambda wildcards: canonical(
            shard_spec(config["experiments"][wildcards.experiment])
        ),
        lambda_reg=lambda wildcards: config["fms"][wildcards.fm]["lambda_reg"],
        device=config.get("sweep_device", "cpu"),
        members=sweep_members,
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
