"""Corpora and images as `datasets.Dataset`s, and the batches the models take.

- `text`: one-sentence-per-line corpora, PTB, tokenization, the text collator;
- `synthetic`: He et al. (2019)'s synthetic corpus, generated in process;
- `images`: MNIST, Omniglot, scikit-learn's digits, the image collator;
- `batching`: length-bucketed batches and samplers;
- `sources`: the datasets `vaehub train` and `vaehub evaluate` know by name.
"""

from vaehub.data.batching import (
    LengthBucketSampler,
    index_batches,
    iterate_batches,
    length_bucketed_batches,
)
from vaehub.data.images import ImageCollator, image_batches, load_digits, load_mnist, load_omniglot
from vaehub.data.synthetic import MIXTURE_CENTRES, synthetic_corpus
from vaehub.data.text import (
    PTB_SPLITS,
    TextCollator,
    check_text_file,
    load_ptb,
    load_text_corpus,
    tokenize_corpus,
)

__all__ = [
    "MIXTURE_CENTRES", "PTB_SPLITS", "ImageCollator", "LengthBucketSampler", "TextCollator",
    "check_text_file", "image_batches", "index_batches", "iterate_batches",
    "length_bucketed_batches", "load_digits", "load_mnist", "load_omniglot", "load_ptb",
    "load_text_corpus", "synthetic_corpus", "tokenize_corpus",
]
