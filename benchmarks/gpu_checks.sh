#!/usr/bin/env bash
# The GPU measurements in one run, for a machine with a CUDA GPU (and, where Snakemake is not
# installed, the wheels of ../shared/gpu/README.md in .whl/). Each step has its own time limit, so
# one slow step cannot take the whole run; everything it prints goes to ${OUT:-gpu_checks}/.
#
#   bash benchmarks/gpu_checks.sh                      # every step, most important first
#   bash benchmarks/gpu_checks.sh tests paper          # the named steps only
#   DEADLINE=540 bash benchmarks/gpu_checks.sh         # no step runs past 540 s from the start
#
# Steps: tests (the CUDA tests), paper (bench_paper.py --device cuda, its GPU rates written to
# $out/rates.json), sweep, jobs, embed (ResNet-18 and ViT-B/16, float32 and bf16, 50,000 images),
# workflow_cuda and workflow_cpu (the embedded default, sweeps on the GPU or on the CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_checks}
deadline=${DEADLINE:-}
mkdir -p "$out"
if ! python3 -c "import snakemake" 2>/dev/null && [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target .site .whl/*.whl
    export PYTHONPATH=$PWD/.site:${PYTHONPATH:-} PATH=$PWD/.site/bin:$PATH
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS COMMAND...: run it with a limit (cut to the deadline), log to $out/NAME.log
    local name=$1 limit=$2
    shift 2
    if [ -n "$deadline" ]; then
        local left=$((deadline - SECONDS))
        if [ "$left" -lt 10 ]; then
            echo "$name: skipped, deadline reached" | tee -a "$out/summary.txt"
            return
        fi
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s (limit $limit s)" | tee -a "$out/summary.txt"
}
workflow() {  # workflow DEVICE: the embedded default from scratch, sweeps on DEVICE
    step "workflow_$1" 300 python3 -m snakemake --cores "$(nproc)" --forceall --directory "$out/$1" \
        --snakefile workflow/Snakefile --configfile config/config.yaml --config "sweep_device=$1"
}
run() {
    case $1 in
    tests)
        step cuda_tests 120 python3 -m pytest -q -p no:cacheprovider tests/test_sweep.py \
            tests/test_embed.py tests/test_clustering.py tests/test_baselines.py \
            tests/test_partial_fit.py tests/test_head.py ;;
    paper)
        cp src/imprint/study/rates.json "$out/rates.json"
        step paper 330 python3 benchmarks/bench_paper.py --device cuda --write-rates "$out/rates.json" ;;
    sweep) step sweep 150 python3 benchmarks/bench_sweep.py --device cuda --skip-baseline ;;
    jobs) step jobs 120 python3 benchmarks/bench_jobs.py --device cuda --repeats 2 ;;
    embed)
        for model in resnet18 vit_b_16; do
            for precision in 32-true bf16-mixed; do
                step "embed_${model}_${precision}" 150 python3 benchmarks/bench_embed.py \
                    --model "$model" --images 50000 --batch-size 256 --precision "$precision" \
                    --device cuda --skip-pil
            done
        done ;;
    workflow_cuda) workflow cuda ;;
    workflow_cpu) workflow cpu ;;
    *) echo "unknown step $1 (tests, paper, sweep, jobs, embed, workflow_cuda, workflow_cpu)" >&2; exit 2 ;;
    esac
}
nvidia-smi --query-gpu=name,memory.total --format=csv > "$out/gpu.txt" 2>&1
[ $# -eq 0 ] && set -- tests paper sweep jobs embed workflow_cuda workflow_cpu
for name in "$@"; do run "$name"; done
tail -n 3 "$out"/*.log > "$out/tails.txt"
cat "$out/summary.txt"
