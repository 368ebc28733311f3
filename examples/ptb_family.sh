#!/usr/bin/env bash
# The rate–distortion family of PTB text VAEs (docs/results/family.md), one stage after
# another, each resumable:
#
#   ae        an autoencoder (β = 0) from scratch: encoder and decoder learn to carry the
#             sentence through z (Li et al. 2019's pretraining). Its KL is unbounded: it is
#             a starting point, not a member of the family. Released as
#             model_cards/ptb-autoencoder: on a machine without RUNS_DIR/ae, give
#             AE=model_cards/ptb-autoencoder and the members start from it (stage ae skipped).
#   recon-90  the reconstruction flagship: the autoencoder continued with the rate held at
#             C = 90 nats (--objective capacity, Burgess et al. 2018), decoder kept, its
#             dropouts lowered to MEMBER_DROPOUT (0.1) and word dropout MEMBER_WORD_DROPOUT
#             (0): copying a sentence through z is underfit, not overfit, at these budgets.
#   cap-60, cap-30, cap-15
#             the same recipe at C = 60, 30 and 15 nats: points along the rate axis.
#   lm-grade  Li et al. (2019): the autoencoder's encoder, the decoder re-initialised
#             (--reset_decoder), β annealed from 0 over 10 epochs, free bits λ = 0.25 nats a
#             dimension (a KL target of 8 nats over 32 dimensions).
#
# Why this order and these recipes: docs/results/family.md (probes of 1,000 updates each:
# the capacity objective from scratch pays its 80 nats with no active unit, MI 0.13; the
# autoencoder puts 31 active units in z in the same budget; from the autoencoder, 600
# updates at C = 90 with decoder dropouts 0.1 and no word dropout fit the validation
# sentences best of the three tried).
#
# Every stage trains with AdamW at 1e-3, batch 32, validates and checkpoints once an epoch
# (about 2.5 minutes on an idle 2-core CPU, well inside the 30-minute checkpoint rule),
# keeps the checkpoint with the best validation objective and stops when it has not improved
# for PATIENCE (2) epochs (transformers' EarlyStoppingCallback), or at MAX_EPOCHS (40).
# The autoencoder is a pretraining stage of AE_EPOCHS (5) epochs, the best by validation
# reconstruction term (it was still improving there: the members continue its training). The members are measured on the whole test set beside ptb-lstm-lm (nats the
# decoder reads from z), with the IW-NLL at K = IW_SAMPLES (100).
#
#   examples/ptb_family.sh RUNS_DIR [PTB_DIR]      (log: RUNS_DIR/family.log)
#
# Run it again after any interruption: a finished stage is skipped, a stage stopped part-way
# resumes from its last complete checkpoint. STAGES picks stages (in order); EXTRA adds flags
# to every stage (a smoke run: EXTRA="--max_steps 2 --max_train_examples 64").
# Where the CPU has bfloat16 instructions it trains with bf16 autocast, elsewhere in float32;
# the log says which. `vaehub release` then writes each card folder (the release commands
# are in docs/results/family.md).
set -euo pipefail

RUNS=${1:?usage: $0 RUNS_DIR [PTB_DIR]}
PTB=${2:-../shared/data/ptb}
BASELINE=${BASELINE:-model_cards/ptb-lstm-lm}
AE_EPOCHS=${AE_EPOCHS:-5}
MAX_EPOCHS=${MAX_EPOCHS:-40}
PATIENCE=${PATIENCE:-2}
IW_SAMPLES=${IW_SAMPLES:-100}
WORD_DROPOUT=${WORD_DROPOUT:-0.4}
MEMBER_WORD_DROPOUT=${MEMBER_WORD_DROPOUT:-0.0}
MEMBER_DROPOUT=${MEMBER_DROPOUT:-0.1}
read -r -a STAGES <<< "${STAGES:-ae recon-90 lm-grade cap-60 cap-30 cap-15}"
AE=${AE:-$RUNS/ae}
VAEHUB=${VAEHUB:-vaehub}
read -r -a EXTRA <<< "${EXTRA:-}"
mkdir -p "$RUNS"
LOG="$RUNS/family.log"
exec > >(tee -a "$LOG") 2>&1

# The precision (PRECISION), the log's header and `stage`: examples/stages.sh.
source "$(dirname "$0")/stages.sh"

COMMON=(--dataset ptb --data_dir "$PTB" --preset ptb --seed 0
        --optim adamw_torch --learning_rate 1e-3 --lr_scheduler_type constant
        --per_device_train_batch_size 32 --max_grad_norm 5.0
        --eval_strategy epoch --save_strategy epoch --save_total_limit 2
        --load_best_model_at_end True --greater_is_better False
        --early_stopping_patience "$PATIENCE"
        --logging_steps 200 --disable_tqdm True "${PRECISION[@]}")
MEMBER=(--metric_for_best_model loss --num_train_epochs "$MAX_EPOCHS" --baseline "$BASELINE"
        --eval_iw_nll True --iw_nll_after_training_only True --final_iw_nll_splits test
        --iw_samples "$IW_SAMPLES")

if [[ "$AE" != "$RUNS/ae" ]]; then  # the autoencoder is given: its stage is not run
    echo "== ae: the members start from $AE"
    kept=(); for s in "${STAGES[@]}"; do [[ $s == ae ]] || kept+=("$s"); done; STAGES=("${kept[@]}")
fi
stage ae --objective beta --beta 0.0 --word_dropout "$WORD_DROPOUT" \
    --metric_for_best_model reconstruction --num_train_epochs "$AE_EPOCHS" "${COMMON[@]}"
# The capacity members start at their C (a ramp from 0 would first squeeze the
# autoencoder's code out): C from the first update.
for capacity in 90 60 30 15; do
    name=cap-$capacity
    [[ $capacity == 90 ]] && name=recon-90
    stage "$name" --model_name_or_path "$AE" --objective capacity --capacity "$capacity" \
        --anneal_steps 1 --word_dropout "$MEMBER_WORD_DROPOUT" \
        --decoder_embedding_dropout "$MEMBER_DROPOUT" --decoder_output_dropout "$MEMBER_DROPOUT" \
        "${MEMBER[@]}" "${COMMON[@]}"
    if [[ $capacity == 90 ]]; then
        stage lm-grade --model_name_or_path "$AE" --reset_decoder True --word_dropout 0.0 \
            --objective anneal --beta_schedule linear --anneal_beta_start 0.0 \
            --anneal_epochs 10 --free_bits 0.25 "${MEMBER[@]}" "${COMMON[@]}"
    fi
done
echo "all stages finished: $(date -u +%FT%TZ)"
