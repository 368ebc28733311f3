"""`vaehub app`: open the latent explorer on some models (`python -m vaehub.app` too)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

DEFAULT_HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    """The command line of `vaehub app`."""
    parser = argparse.ArgumentParser(
        prog="vaehub app",
        description="Open the latent explorer, a Gradio page showing what each model's "
        "latent does: samples, reconstructions, interpolations, analogies, the diagnosis, "
        "two models side by side. Needs `pip install vaehub[app]`.",
    )
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="model folders or Hub ids (default: every folder of model_cards/)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default %(default)s: this machine only; 0.0.0.0 opens "
        "the page to the network)",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: 7860, or the next free one)"
    )
    parser.add_argument(
        "--allow-any-model",
        action="store_true",
        help="let the page open any folder or Hub id typed into it (off: only MODELs)",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="test images for the image tabs: an MNIST or Omniglot folder, or 'digits' "
        "(default: image paths join two draws from the prior)",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        help="also open a public gradio.live link (off by default)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait on the Hub before giving up (as the other vaehub commands)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, check the models and serve the page until interrupted."""
    args = build_parser().parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        print(f"vaehub app: error: --port {args.port} is not a port number.", file=sys.stderr)
        return 2
    try:
        import gradio  # noqa: F401
    except ImportError:
        print(
            "vaehub app: error: the explorer needs gradio: pip install 'vaehub[app]'.",
            file=sys.stderr,
        )
        return 1
    from vaehub.app.models import ModelStore, default_sources
    from vaehub.app.ui import build_app, launch
    from vaehub.utils import network

    try:
        network.set_hub_timeout(args.timeout)
    except ValueError as error:
        print(f"vaehub app: error: {error}", file=sys.stderr)
        return 2
    sources = args.models or default_sources()
    missing = [s for s in sources if not os.path.isdir(s) and os.path.exists(s)]
    if missing:
        print(f"vaehub app: error: not a model folder: {', '.join(missing)}", file=sys.stderr)
        return 1
    if not sources and not args.allow_any_model:
        print(
            "vaehub app: error: no models: give model folders or Hub ids (no model_cards/ "
            "folder was found).",
            file=sys.stderr,
        )
        return 1
    store = ModelStore(sources, allow_any=args.allow_any_model)
    app = build_app(store, data=args.data)
    print(f"vaehub app: {len(store.names)} model(s): {', '.join(store.names)}")
    launch(app, host=args.host, port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
