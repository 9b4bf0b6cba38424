#!/usr/bin/env bash
# The `make demo` tour: a short sequence of real nvlm commands on CPU.
#
#   make demo                  # MODEL=bert
#   make demo MODEL=electra
#   make demo TASK=classify    # MODEL=bert|electra: pretrain, then a text classifier
#   MODEL=transformer-xl bash tools/demo.sh    # with .venv/bin on PATH (make demo does that)
#
# Everything it writes goes to demo-run/<model>/ (demo-run/<model>-classify/ with TASK=classify;
# gitignored; DEMO_DIR overrides demo-run), emptied at the start so that every run starts from
# the same state.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=${MODEL:-bert}
case $model in
    bert | electra | transformer-xl | transformer_xl) ;;
    *)
        echo "demo: unknown MODEL '$model'; use bert, electra or transformer-xl" >&2
        exit 2
        ;;
esac
task=${TASK:-tour}
case $task in
    tour) ;;
    classify)
        case $model in
            bert | electra) ;;
            *)
                echo "demo: TASK=classify needs MODEL=bert or MODEL=electra, not '$model'" >&2
                exit 2
                ;;
        esac
        ;;
    *)
        echo "demo: unknown TASK '$task'; use classify (or leave TASK unset for the tour)" >&2
        exit 2
        ;;
esac

# Prefer the project's venv when the caller has not put one on PATH.
if ! command -v nvlm >/dev/null && [[ -x $root/.venv/bin/nvlm ]]; then
    PATH=$root/.venv/bin:$PATH
fi
command -v nvlm >/dev/null || {
    echo "demo: nvlm is not installed; run: make demo" >&2
    exit 1
}

run_dir=${DEMO_DIR:-$root/demo-run}/$model
[[ $task == classify ]] && run_dir=$run_dir-classify
rm -rf -- "$run_dir"
mkdir -p -- "$run_dir"
cd -- "$run_dir"

step() { printf '\n$ %s\n' "$*" >&2; "$@"; }

echo "nvlm demo: model=$model, task=$task, working in $run_dir" >&2
step nvlm --version
step nvlm presets list

case $task-$model in
    classify-*)
        # 1. Data: the synthetic corpus plus a labelled set about the same made-up world
        #    (classify-train.jsonl / classify-dev.jsonl: a market day told with a positive or a
        #    negative remark; the dev set is about other people), a WordPiece vocab, pretraining
        #    shards (fewer documents than the tour: this tour's budget is ~5 minutes).
        #    The vocab is trained on the labelled training texts too: their remark words are
        #    not in the corpus, which would split them into pieces ("excellent" -> [UNK]: the
        #    corpus has no "x").
        step nvlm data demo-corpus --out data --documents 1000 --classify
        step nvlm data vocab --input data/corpus.txt data/classify-train.jsonl --vocab-size 4000 \
            --out vocab.txt
        masking=()
        [[ $model == bert ]] && masking=(--max-predictions 20) # ELECTRA masks at every step
        step nvlm data pretraining --model "$model" --input data/corpus.txt --vocab vocab.txt \
            --out shards --seq-len 128 "${masking[@]}" --dupe-factor 2 --workers 2
        # 2. A short pretraining of a tiny model on CPU in bf16 (the tour's recipe, fewer steps).
        step nvlm pretrain --model "$model" --preset cpu-bf16 --data shards --out "runs/$model" \
            --set model.size=tiny --steps 150 --set train.lr=1e-2 --set train.lr_per_gpu=false
        init=runs/$model
        [[ $model == electra ]] && init=runs/electra/hf/discriminator
        # 3. Fine-tune a classifier (the label set, positive and negative, is read from the
        #    training file and kept with the run), evaluate on the dev set at the end, again
        #    with nvlm eval (accuracy, macro-F1, confusion matrix, latency), and label new texts.
        #    Dropout off: with it, the tiny ELECTRA stayed at chance (loss ln 2) in bf16 within
        #    this budget (measured; in fp32, or in bf16 without dropout, it learns).
        step nvlm finetune --model "$model" --task classify --data data/classify-train.jsonl \
            --init "$init" --out runs/classify --preset cpu-bf16 --epochs 4 \
            --set model.dropout=0 --set model.attention_dropout=0 \
            --set data.seq_len=64 --set train.lr=1e-3 --set train.batch_size=16 \
            --set train.lr_per_gpu=false --eval-data data/classify-dev.jsonl
        step nvlm eval --task classify --init runs/classify --data data/classify-dev.jsonl
        step nvlm predict --task classify --init runs/classify \
            --text "Everyone said the plum dumplings at the market were delightful."
        step nvlm predict --task classify --init runs/classify \
            --text "The walk to the river was gloomy, and the soup was awful."
        ;;
    tour-bert)
        # 1. Data: our synthetic corpus (+ a SQuAD-format set about the same made-up world),
        #    a WordPiece vocab, BERT pretraining shards, and a check of the shards.
        step nvlm data demo-corpus --out data --documents 2000 --squad 1.1
        step nvlm data vocab --input data/corpus.txt --vocab-size 4000 --out vocab.txt
        step nvlm data pretraining --model bert --input data/corpus.txt --vocab vocab.txt \
            --out shards --seq-len 128 --max-predictions 20 --dupe-factor 2 --workers 2
        step nvlm data verify shards
        # 2. Pretrain a tiny BERT on CPU in bf16 (MLM + NSP, LAMB); the loss falls.
        step nvlm pretrain --model bert --preset cpu-bf16 --data shards --out runs/bert \
            --set model.size=tiny --steps 300 --set train.lr=1e-2 --set train.lr_per_gpu=false
        step nvlm eval --model bert --task mlm --init runs/bert --data shards
        # 3. Fine-tune it for question answering and ask it a question.
        step nvlm finetune --model bert --task squad --data data/squad-train.json \
            --init runs/bert --out runs/squad --preset cpu-bf16 --epochs 3 \
            --set data.seq_len=128 --set data.max_query_len=32 --set data.doc_stride=64 --set train.lr=3e-3 \
            --set train.batch_size=16 --set train.lr_per_gpu=false \
            --eval-data data/squad-dev.json
        question=$(python -c 'import json,sys; d=json.load(open("data/squad-dev.json")); print(d["data"][0]["paragraphs"][0]["qas"][0]["question"])')
        context=$(python -c 'import json,sys; d=json.load(open("data/squad-dev.json")); print(d["data"][0]["paragraphs"][0]["context"])')
        step nvlm predict --model bert --init runs/squad --question "$question" --context "$context"
        ;;
    tour-electra)
        # 1. Data: the same synthetic corpus and SQuAD-format set, a WordPiece vocab, ELECTRA
        #    pretraining shards (unmasked: masking is dynamic, at every step), and a check.
        step nvlm data demo-corpus --out data --documents 2000 --squad 1.1
        step nvlm data vocab --input data/corpus.txt --vocab-size 4000 --out vocab.txt
        step nvlm data pretraining --model electra --input data/corpus.txt --vocab vocab.txt \
            --out shards --seq-len 128 --dupe-factor 2 --workers 2
        step nvlm data verify shards
        # 2. Pretrain a tiny ELECTRA on CPU in bf16 (replaced token detection, LAMB): disc_acc
        #    climbs above disc_baseline_acc. At the end runs/electra/hf holds the discriminator
        #    and the generator as Hugging Face directories.
        step nvlm pretrain --model electra --preset cpu-bf16 --data shards --out runs/electra \
            --set model.size=tiny --steps 300 --set train.lr=1e-2
        step nvlm eval --model electra --task mlm --init runs/electra --data shards
        # 3. Fine-tune the exported discriminator with the joint answer head (beam search) and
        #    ask it a question.
        step nvlm finetune --model electra --task squad --data data/squad-train.json \
            --init runs/electra/hf/discriminator --out runs/squad --preset cpu-bf16 --epochs 3 \
            --set data.seq_len=128 --set data.max_query_len=32 --set data.doc_stride=64 --set train.lr=3e-3 \
            --set train.batch_size=16 --eval-data data/squad-dev.json
        question=$(python -c 'import json,sys; d=json.load(open("data/squad-dev.json")); print(d["data"][0]["paragraphs"][0]["qas"][0]["question"])')
        context=$(python -c 'import json,sys; d=json.load(open("data/squad-dev.json")); print(d["data"][0]["paragraphs"][0]["context"])')
        step nvlm predict --model electra --init runs/squad --question "$question" --context "$context"
        ;;
    tour-transformer-xl | tour-transformer_xl)
        # 1. Data: the synthetic corpus as WikiText-style word-level text (punctuation split off,
        #    one line per sentence, documents split 90/5/5 into train/valid/test), then a
        #    frequency-ordered vocabulary and one token-id stream per split, and a check.
        step nvlm data demo-corpus --out data --documents 2000
        python - <<'PY'
import re
docs = [d.strip() for d in open("data/corpus.txt", encoding="utf-8").read().split("\n\n")]
docs = [d for d in docs if d]
splits = {"train": [], "valid": [], "test": []}
for i, doc in enumerate(docs):
    name = "valid" if i % 20 == 18 else "test" if i % 20 == 19 else "train"
    lines = [" ".join(re.sub(r"([.,;:!?()\"])", r" \1 ", line).split()) for line in doc.split("\n")]
    splits[name] += lines + [""]
for name, lines in splits.items():
    open(f"data/{name}.txt", "w", encoding="utf-8").write("\n".join(lines) + "\n")
PY
        step nvlm data lm --train data/train.txt --valid data/valid.txt --test data/test.txt --out lm
        step nvlm data verify lm
        # 2. Train a tiny Transformer-XL on CPU in bf16 (segments of 64 tokens, memory of 64,
        #    LAMB, cosine schedule; the preset's transformer_xl.train stage): ppl falls.
        step nvlm pretrain --model transformer-xl --preset cpu-bf16 --data lm --out runs/txl \
            --steps 300 --set train.lr=0.02 --set train.warmup_steps=30
        # 3. Perplexity on the test split with the preset's evaluation settings (tgt_len 64,
        #    mem_len 640, clamp_len 400, same_length), then the next words, a continuation and
        #    per-line scores.
        step nvlm eval --model transformer-xl --task lm --init runs/txl --data lm --split test
        step nvlm predict --model transformer-xl --init runs/txl --text "One Tuesday morning" --next 5
        step nvlm predict --model transformer-xl --init runs/txl --text "The market of" --generate 20
        head -3 data/test.txt | step nvlm predict --model transformer-xl --init runs/txl --input - --task score
        ;;
esac
# Last: how fast the model's inference is on this machine, in the published tables' layout
# (random tiny weights and synthetic inputs; speed does not depend on the weights' values;
# --max-busy 1: a demo measures even on a busy machine, where a real benchmark would stop).
case $task-$model in
    classify-*) step nvlm benchmark infer --model "$model" --task classify --size tiny --seq-len 64 --batch-sizes 1,8 --steps 30 --max-busy 1 ;;
    *-transformer-xl | *-transformer_xl) step nvlm benchmark infer --model transformer-xl --size tiny --batch-sizes 1,8 --steps 30 --max-busy 1 ;;
    *) step nvlm benchmark infer --model "$model" --size tiny --seq-len 128 --batch-sizes 1,8 --steps 30 --max-busy 1 ;;
esac
echo "nvlm demo: done (outputs in $run_dir)" >&2
