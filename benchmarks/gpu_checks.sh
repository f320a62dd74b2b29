#!/usr/bin/env bash
# The GPU measurements in one run, for a machine with a CUDA GPU (and, where Snakemake is not
# installed, the wheels of ../shared/gpu/README.md in .whl/). Each step has its own time limit, so
# one slow step cannot take the whole run; everything it prints goes to ${OUT:-gpu_checks}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_checks}
mkdir -p "$out"
if ! python3 -c "import snakemake" 2>/dev/null && [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target .site .whl/*.whl
    export PYTHONPATH=$PWD/.site:${PYTHONPATH:-} PATH=$PWD/.site/bin:$PATH
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS COMMAND...: run it with a limit, log to $out/NAME.log
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s" | tee -a "$out/summary.txt"
}
nvidia-smi --query-gpu=name,memory.total --format=csv > "$out/gpu.txt" 2>&1
step cuda_tests 150 python3 -m pytest -q tests/test_sweep.py tests/test_embed.py tests/test_clustering.py \
    tests/test_baselines.py tests/test_partial_fit.py tests/test_head.py
step jobs 120 python3 benchmarks/bench_jobs.py --device cuda --repeats 2
for model in resnet18 vit_b_16; do
    for precision in 32-true bf16-mixed; do
        step "embed_${model}_${precision}" 150 python3 benchmarks/bench_embed.py \
            --model "$model" --images 50000 --batch-size 256 --precision "$precision" \
            --device cuda --skip-pil
    done
done
step sweep 150 python3 benchmarks/bench_sweep.py --device cuda --skip-baseline
step workflow_cpu 240 python3 -m snakemake --cores 16 --forceall --directory "$out/cpu" \
    --snakefile workflow/Snakefile --configfile config/config.yaml
step workflow_cuda 240 python3 -m snakemake --cores 16 --forceall --directory "$out/cuda" \
    --snakefile workflow/Snakefile --configfile config/config.yaml --config sweep_device=cuda
tail -n 3 "$out"/*.log > "$out/tails.txt"
cat "$out/summary.txt"
