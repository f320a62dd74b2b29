# Sweeps: a shard is the runs of one (experiment, FM, data set, label mapping, task split). One
# job sweeps a pack of an experiment's shards (in a canonical order) that fit the job budget
# together (config job_budget, imprint.study.cost), or one part of a shard the budget splits.
# Experiments that name it under share_jobs_with have their runs swept in its jobs, in the same
# sweep as its own (what they share is computed once); each one's runs table takes its rows.


rule sweep_shard:
    input:
        unpack(sweep_inputs),
    output:
        "results/runs/{experiment}/pack{pack}.parquet",
    log:
        "logs/imprint/{experiment}/pack{pack}.log",
    conda:
        "../../envs/imprint.yaml"
    threads: lambda wildcards: sweep_setup(config, wildcards.experiment)[1]
    resources:
        gpu=sweep_gpus(shared=False),
        gpu_share=sweep_gpus(shared=True),
        runtime=sweep_minutes,
        mem_mb=8000,
    params:
        experiment=lambda wildcards: canonical(
            job_spec(config["experiments"], wildcards.experiment)
        ),
        device=lambda wildcards: sweep_setup(config, wildcards.experiment)[0],
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
    params:
        rows=lambda wildcards: {"experiment": wildcards.experiment},
    script:
        "../scripts/gather_tables.py"
