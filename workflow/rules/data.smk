# Data sets, decoded once into uint8 arrays under resources/data/.


rule digits:
    output:
        "resources/data/digits/{split}.npz",
    log:
        "logs/data/digits_{split}.log",
    localrule: True
    conda:
        "../../envs/imprint.yaml"
    script:
        "../scripts/digits.py"


# Both splits in one job: torchvision downloads a data set's files into one folder, and two
# jobs writing the same files at once would race.
rule download_data:
    output:
        train="resources/data/{dataset}/train.npz",
        test="resources/data/{dataset}/test.npz",
    log:
        "logs/data/{dataset}.log",
    wildcard_constraints:
        dataset="mnist|fashionmnist|cifar10|cifar100|usps|svhn|mnistm",
    retries: 3
    localrule: True
    conda:
        "../../envs/imprint.yaml"
    params:
        root=lambda wildcards: f"resources/data/downloads/{wildcards.dataset}",
    script:
        "../scripts/download_data.py"
