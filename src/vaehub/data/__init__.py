"""Corpora and images as `datasets.Dataset`s, and the batches the models take.

- `text`: one-sentence-per-line corpora, PTB, tokenization, the text collator;
- `synthetic`: He et al. (2019)'s synthetic corpus, generated in process;
- `images`: MNIST, Omniglot, scikit-learn's digits, the image collator;
- `vectors`: real-valued vectors (Frey Faces, MNIST grey levels, .npy/.npz files) for the
  linear VAE;
- `batching`: length-bucketed batches and samplers;
- `sources`: the datasets `vaehub train` and `vaehub evaluate` know by name.
"""

from vaehub.utils.lazy import lazy_exports

_EXPORTS = {
    "LengthBucketSampler": "vaehub.data.batching",
    "index_batches": "vaehub.data.batching",
    "iterate_batches": "vaehub.data.batching",
    "length_bucketed_batches": "vaehub.data.batching",
    "ImageCollator": "vaehub.data.images",
    "image_batches": "vaehub.data.images",
    "load_digits": "vaehub.data.images",
    "load_mnist": "vaehub.data.images",
    "load_omniglot": "vaehub.data.images",
    "MIXTURE_CENTRES": "vaehub.data.synthetic",
    "synthetic_corpus": "vaehub.data.synthetic",
    "PTB_SPLITS": "vaehub.data.text",
    "TextCollator": "vaehub.data.text",
    "check_text_file": "vaehub.data.text",
    "load_ptb": "vaehub.data.text",
    "load_text_corpus": "vaehub.data.text",
    "tokenize_corpus": "vaehub.data.text",
    "load_frey_faces": "vaehub.data.vectors",
    "load_vectors": "vaehub.data.vectors",
    "vector_batches": "vaehub.data.vectors",
}

__all__ = [
    "MIXTURE_CENTRES", "PTB_SPLITS", "ImageCollator", "LengthBucketSampler", "TextCollator",
    "check_text_file", "image_batches", "index_batches", "iterate_batches",
    "length_bucketed_batches", "load_digits", "load_frey_faces", "load_mnist", "load_omniglot",
    "load_ptb", "load_text_corpus", "load_vectors", "synthetic_corpus", "tokenize_corpus",
    "vector_batches",
]


# Imported when first used: importing one module of the package loads nothing else.
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
