"""The latent explorer: a Gradio app that shows what a vaehub model's latent does.

    models.py    the models the app was started with, each loaded once and kept; the
                 errors a user can act on; progress and cancellation of long work
    explore.py   the work of each tab as plain functions (no Gradio), testable alone
    ui.py        the Gradio Blocks page wiring those functions to components
    launch.py    `main(argv)`: the `vaehub app` command line

Only `ui.py` and `launch.py` import gradio (`pip install vaehub[app]`); the rest of
vaehub never imports this package, so the core library does not need gradio.
"""
