# What the staged training queues share (sourced by examples/ptb_flagships.sh and
# examples/ptb_family.sh, after they set RUNS, STAGES (an array), VAEHUB and EXTRA (an array)
# and send their output to the log): the precision the CPU trains in, where vaehub is
# imported from, and `stage NAME FLAGS...`, which trains RUNS/NAME unless it is finished and
# resumes it from its newest complete checkpoint if it was begun.
#
# Where the CPU has bfloat16 instructions (AVX512-BF16 or AMX) PRECISION is bf16 autocast,
# elsewhere float32; the log says which.

if python - <<'PROBE'
import sys
from vaehub.training.arguments import cpu_supports_bf16
sys.exit(0 if cpu_supports_bf16() else 1)
PROBE
then PRECISION=(--bf16 True); echo "precision: bfloat16 autocast (the CPU has bf16)"
else PRECISION=(); echo "precision: float32 (the CPU has no bfloat16 instructions)"
fi
echo "vaehub from: $(python -c 'import vaehub; print(vaehub.__file__)')"
echo "started: $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"

stage() {  # stage NAME FLAGS...: train RUNS/NAME unless it is finished; resume if begun
    local name=$1; shift
    if [[ " ${STAGES[*]} " != *" $name "* ]]; then echo "== $name: not in STAGES"; return; fi
    local out="$RUNS/$name"
    if [[ -f "$out/eval_test.json" && -f "$out/model.safetensors" ]]; then
        echo "== $name: finished earlier, skipped"; return
    fi
    local resume=()
    local last
    # The newest complete checkpoint: transformers writes trainer_state.json last.
    last=$(ls -d "$out"/checkpoint-*/trainer_state.json 2>/dev/null | sort -V | tail -1 || true)
    if [[ -n "$last" ]]; then
        resume=(--resume_from_checkpoint "$(dirname "$last")"); echo "== $name: resuming"
    fi
    echo "== $name: $(date -u +%FT%TZ) $VAEHUB train $* --output_dir $out"
    local start=$SECONDS
    "$VAEHUB" train "$@" --output_dir "$out" "${resume[@]}" "${EXTRA[@]}"
    echo "== $name: done in $((SECONDS - start)) s, load: $(cut -d' ' -f1-3 /proc/loadavg)"
}
