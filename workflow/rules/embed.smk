# Foundation models and their embeddings of every data set split.


rule train_demo_fm:
    input:
        "resources/data/digits/train.npz",
    output:
        "resources/models/{fm}.pt",
    log:
        "logs/embed/train_{fm}.log",
    wildcard_constraints:
        fm="demo_[a-z0-9_]+",
    conda:
        "../../envs/imprint.yaml"
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        settings=lambda wildcards: canonical(config["demo_fms"][wildcards.fm]),
    script:
        "../scripts/train_demo_fm.py"


# A torchvision or timm FM's weights, stored once by the machine that plans (compute nodes need
# no internet): fetched from the library, drawn at random (seeded), or your own file, checked.
rule fm_weights:
    input:
        own_weights,
    output:
        "resources/models/{fm}.pth",
    log:
        "logs/embed/weights_{fm}.log",
    wildcard_constraints:
        fm=fms_where(lambda spec: spec.library),
    retries: 3
    localrule: True
    conda:
        "../../envs/imprint.yaml"
    params:
        fm=fm_params,
    script:
        "../scripts/fm_weights.py"


rule embed:
    input:
        unpack(embed_inputs),
    output:
        train="results/embeddings/{fm}/{dataset}/train.npy",
        train_labels="results/embeddings/{fm}/{dataset}/train.labels.npy",
        train_manifest="results/embeddings/{fm}/{dataset}/train.manifest.json",
        test="results/embeddings/{fm}/{dataset}/test.npy",
        test_labels="results/embeddings/{fm}/{dataset}/test.labels.npy",
        test_manifest="results/embeddings/{fm}/{dataset}/test.manifest.json",
    log:
        "logs/embed/{fm}_{dataset}.log",
    conda:
        "../../envs/imprint.yaml"
    # Decoding workers and the forward pass; the demo's tiny CNNs need one thread.
    threads: lambda wildcards: 1 if wildcards.fm.startswith("demo_") else 4
    resources:
        gpu=lambda wildcards: gpus(not wildcards.fm.startswith("demo_")),
        runtime=120,
        mem_mb=16000,
    params:
        fm=fm_params,
        batch_size=lambda wildcards: config["fms"][wildcards.fm].get("batch_size", 256),
        precision=lambda wildcards: config["fms"][wildcards.fm].get(
            "precision", "32-true"
        ),
        imagenet_root=config.get("imagenet_root"),
        folder=lambda wildcards: image_folder(wildcards.dataset),
    script:
        "../scripts/embed.py"


# Precomputed embeddings (an FM with `embeddings`): checked and stored like computed ones.
rule import_embeddings:
    input:
        precomputed_files,
    output:
        embeddings="results/embeddings/{fm}/{dataset}/{split}.npy",
        labels="results/embeddings/{fm}/{dataset}/{split}.labels.npy",
        manifest="results/embeddings/{fm}/{dataset}/{split}.manifest.json",
    log:
        "logs/embed/{fm}_{dataset}_{split}.log",
    wildcard_constraints:
        fm=fms_where(lambda spec: spec.source == "precomputed"),
    localrule: True
    conda:
        "../../envs/imprint.yaml"
    params:
        arrays=precomputed_split,
    script:
        "../scripts/import_embeddings.py"


ruleorder: import_embeddings > embed
