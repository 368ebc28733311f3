#!/usr/bin/env bash
# The flagship PTB checkpoints, trained to convergence on the CPU, one stage after another:
#
#   1. lstm-lm    the exact LSTM language model (He et al.'s optimisation, 256/256, dropout
#                 0.5), the baseline every VAE below is measured against;
#   2. ae         Li et al. (2019)'s pretraining: the LM's decoder with a new encoder trained
#                 as a plain autoencoder (β = 0);
#   3. vae        the LM's decoder with a new encoder, He et al. (2019)'s aggressive training
#                 (inner loops of up to INNER_STEPS (20) encoder steps, each loop ending when
#                 the mean loss of WINDOW (5) steps stops falling, while the validation MI
#                 rises; checked every CHECK_STEPS (100) updates, as one check an epoch does
#                 not fit a CPU budget) and free bits λ = FREE_BITS (0.25) nats a dimension
#                 (KL ≥ 8 nats): the best likelihood with a latent in use;
#   4. high-rate  stage 3's model continued for HIGH_RATE_EPOCHS (2) epochs with free bits
#                 λ = 1 nat a dimension (KL ≥ 32 nats): a code that carries most of the
#                 sentence, for reconstruction and interpolation. Its test IW-NLL after
#                 training takes K = HIGH_RATE_IW_SAMPLES (10): its release measures the
#                 stored weights at K = 500 (`vaehub release --split-iw-samples 500`).
#
# AGGRESSIVE=0 starts stage 3 from the autoencoder of stage 2 instead (Li et al. 2019). The
# aggressive start is the default: the autoencoder start can still collapse (see
# docs/results/code-notes.md); its price is an inner loop of many encoder steps an update,
# which a busy CPU feels most.
#
# Every stage validates once an epoch, keeps the checkpoint with the best validation loss
# (negative ELBO; the exact NLL for the LM) and is measured on the whole test set, the VAEs
# with the IW-NLL at K = 500. Run it again after any interruption: a finished stage is
# skipped, a stage stopped part-way resumes from its last complete checkpoint.
#
#   examples/ptb_flagships.sh RUNS_DIR [PTB_DIR]      (log: RUNS_DIR/flagships.log)
#
# Budgets by environment variable: LM_EPOCHS (25), AE_EPOCHS (2), VAE_EPOCHS (5),
# HIGH_RATE_EPOCHS (2), HIGH_RATE_IW_SAMPLES (10), IW_SAMPLES (500, K of the VAEs' test IW-NLL), STAGES (which of the
# four to run), AGGRESSIVE (1), INNER_STEPS (20), WINDOW (5), CHECK_STEPS (100), FREE_BITS
# (0.25).
#
# Where the CPU has bfloat16 instructions (AVX512-BF16 or AMX) it trains with bf16 autocast,
# elsewhere in float32; the log says which. `vaehub release` then writes the card folders.
set -euo pipefail

RUNS=${1:?usage: $0 RUNS_DIR [PTB_DIR]}
PTB=${2:-../shared/data/ptb}
LM_EPOCHS=${LM_EPOCHS:-25}
AE_EPOCHS=${AE_EPOCHS:-2}
VAE_EPOCHS=${VAE_EPOCHS:-5}
IW_SAMPLES=${IW_SAMPLES:-500}
# STAGES: which stages to run, in order (all four by default).
read -r -a STAGES <<< "${STAGES:-lstm-lm ae vae high-rate}"
VAEHUB=${VAEHUB:-vaehub}
# EXTRA: flags added to every stage (a smoke run: EXTRA="--max_steps 2 --max_train_examples 64").
read -r -a EXTRA <<< "${EXTRA:-}"
mkdir -p "$RUNS"
LOG="$RUNS/flagships.log"
exec > >(tee -a "$LOG") 2>&1

# The precision (PRECISION), the log's header and `stage`: examples/stages.sh.
source "$(dirname "$0")/stages.sh"

COMMON=(--dataset ptb --data_dir "$PTB" --preset ptb --paper_training --seed 0
        --eval_strategy epoch --save_strategy epoch --save_total_limit 2
        --load_best_model_at_end True --metric_for_best_model loss --greater_is_better False
        --logging_steps 200 --disable_tqdm True "${PRECISION[@]}")
VAE_EVAL=(--eval_iw_nll True --iw_nll_after_training_only True --final_iw_nll_splits test
          --iw_samples "$IW_SAMPLES")

stage lstm-lm --model_type text_lm --num_train_epochs "$LM_EPOCHS" "${COMMON[@]}"
[[ "${AGGRESSIVE:-1}" == 1 ]] || stage ae --init_decoder_from "$RUNS/lstm-lm" --objective beta --beta 0.0 \
    --num_train_epochs "$AE_EPOCHS" "${COMMON[@]}"
if [[ "${AGGRESSIVE:-1}" == 1 ]]; then
    START=(--init_decoder_from "$RUNS/lstm-lm" --objective aggressive
           --aggressive_max_inner_steps "${INNER_STEPS:-20}" --aggressive_window "${WINDOW:-5}"
           --aggressive_check_steps "${CHECK_STEPS:-100}")
else
    START=(--model_name_or_path "$RUNS/ae" --objective free_bits)
fi
stage vae "${START[@]}" --free_bits "${FREE_BITS:-0.25}" --baseline "$RUNS/lstm-lm" \
    --num_train_epochs "$VAE_EPOCHS" "${COMMON[@]}" "${VAE_EVAL[@]}"
stage high-rate --model_name_or_path "$RUNS/vae" --objective free_bits --free_bits 1.0 \
    --baseline "$RUNS/lstm-lm" --num_train_epochs "${HIGH_RATE_EPOCHS:-2}" "${COMMON[@]}" \
    "${VAE_EVAL[@]}" --iw_samples "${HIGH_RATE_IW_SAMPLES:-10}"
echo "all stages finished: $(date -u +%FT%TZ)"
