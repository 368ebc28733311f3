"""The explorer's page: Gradio Blocks wiring `vaehub.app.explore` to components.

Each handler takes the component values, calls one function of `explore` on a model
held from the `ModelStore`, and returns the values to show. Whatever goes wrong reaches
the page as a message in the tab's status box (and a toast), never as a traceback:
`UserError`s as they are, anything else as its type and message, logged in full on the
server.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local app

import gradio as gr  # noqa: E402

from vaehub.app import explore  # noqa: E402
from vaehub.app.models import Cancelled, Job, ModelStore, UserError, model_kind  # noqa: E402

LOGGER = logging.getLogger("vaehub.app")

# Gradio knows a progress parameter by its default being a `gr.Progress` (it hands each
# call a tracker of its own in its place). The diagnosis reports through tqdm.
PROGRESS = gr.Progress()
TQDM_PROGRESS = gr.Progress(track_tqdm=True)

TITLE = "vaehub latent explorer"

INTRO = (
    "Look at what a VAE's latent code does: sample sentences or digits from the prior, "
    "encode a sentence and decode it again, walk between two sentences, do latent "
    "arithmetic, read a model's diagnosis, and put two models side by side on the same "
    "input. A model whose posterior collapsed decodes the same thing whatever z is."
)

DIAGNOSE_SENTENCES = "\n".join(
    [
        "the company said it expects higher sales next year",
        "stocks fell sharply in heavy trading",
        "the bank reported a loss for the third quarter",
        "investors were cautious ahead of the report",
        "the new plan would cut costs by N N",
        "he said the market is likely to recover",
        "prices of government bonds rose",
        "the agency said it will review the proposal",
    ]
)


def status(message: str, kind: str = "info") -> str:
    """A status line for a tab, Markdown; `message` must already be Markdown-safe."""
    if not message:
        return ""
    mark = {"info": "", "error": "**Error:** ", "stopped": "**Stopped.** "}[kind]
    return f"{mark}{message}"


def guarded(outputs: int) -> Callable[[Callable[..., tuple]], Callable[..., tuple]]:
    """Wrap a handler whose first output is the tab's status box: on failure, the status
    box says what went wrong and the other `outputs - 1` outputs are left as they were."""

    def wrap(handler: Callable[..., tuple]) -> Callable[..., tuple]:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> tuple:
            try:
                return handler(*args, **kwargs)
            except Cancelled:
                said, kind = "The work was stopped; nothing else was changed.", "stopped"
            except UserError as error:
                said, kind = str(error), "error"
            except (ValueError, OSError, RuntimeError) as error:
                # vaehub's own refusals (bad options, an unreadable checkpoint, a Hub that
                # did not answer) say what is wrong; the traceback stays in the server log.
                LOGGER.warning("handler %s failed", handler.__name__, exc_info=True)
                said, kind = str(error), "error"
            except Exception as error:  # noqa: BLE001 - the page must never show a traceback
                LOGGER.exception("handler %s failed", handler.__name__)
                said, kind = f"something went wrong ({type(error).__name__}: {error}).", "error"
            # The toast shows text as HTML, not Markdown: only the HTML marks are escaped.
            gr.Warning(html.escape(said, quote=False), duration=8)
            return (status(explore.escape(said), kind), *[gr.skip() for _ in range(outputs - 1)])

        return run

    return wrap


def _decoding(
    strategy: str,
    beams: float,
    temperature: float,
    top_k: float,
    top_p: float,
    allow_unk: bool,
    max_new_tokens: float,
) -> explore.Decoding:
    return explore.Decoding(
        strategy,
        int(beams),
        float(temperature),
        int(top_k),
        float(top_p),
        bool(allow_unk),
        int(max_new_tokens) or None,
    )


def _lines(sentences: list[str]) -> str:
    return "\n".join(sentences)


class Jobs:
    """One `Job` per browser session, so Stop ends that session's work only."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._guard = threading.Lock()

    def of(self, request: gr.Request | None) -> Job:
        key = getattr(request, "session_hash", None) or "local"
        with self._guard:
            return self._jobs.setdefault(key, Job())


def build_app(
    store: ModelStore,
    data: str | None = None,
    workdir: str | None = None,
) -> gr.Blocks:
    """The explorer's page for the models of `store`.

    Args:
        data: test images for the image tabs and image diagnosis (an MNIST or Omniglot
            folder, or `digits`); without it, image paths join two prior draws.
        workdir: where diagnose writes its figures (default: a fresh temporary folder).
    """
    workdir = workdir or tempfile.mkdtemp(prefix="vaehub-app-")
    jobs = Jobs()
    names = store.names
    first = names[0] if names else None
    image_cache: dict[str, Any] = {}

    def images_for(model: Any) -> Any:
        if data is None:
            return None
        if "images" not in image_cache:
            image_cache["images"] = explore.test_images(data)
        return image_cache["images"]

    # --- handlers ----------------------------------------------------------------------

    def describe(name: str) -> str:
        try:
            model = store.load(name)
        except Exception as error:  # noqa: BLE001 - shown on the page, never raised there
            return status(explore.escape(str(error)), "error")
        config = model.config
        kind = {
            "text_vae": "text VAE",
            "text_lm": "LSTM language model (no latent)",
            "image_vae": "image δ-VAE",
            "image_lm": "PixelCNN (no latent)",
            "other": config.model_type,
        }[model_kind(model)]
        parts = [f"**{explore.escape(name)}**: {kind}"]
        if getattr(config, "latent_size", None) and model_kind(model).endswith("vae"):
            parts.append(f"latent size {config.latent_size}, prior `{config.prior}`")
        view = explore.card_view(model, store.source(name))
        parts += [f"{label} {value}" for label, value in view.rows[:2]]
        return "; ".join(parts) + "."

    @guarded(2)
    def on_sample(name, count, seed, *decoding):
        with store.use(name) as model:
            sentences = explore.sample_sentences(model, count, seed, _decoding(*decoding))
        return "", _lines(sentences)

    @guarded(2)
    def on_same_z(name, seed, *decoding):
        allow_unk = decoding[5]
        with store.use(name) as model:
            rows = explore.same_z_decodings(model, seed, allow_unk=allow_unk)
        return "", [list(row) for row in rows]

    @guarded(5)
    def on_reconstruct(name, text, samples, seed, *decoding):
        with store.use(name) as model:
            result = explore.reconstruct_sentence(model, text, samples, seed, _decoding(*decoding))
        frame = result.table()
        note = explore.unknown_note(result.unknown)
        summary = f"KL of this sentence: {result.kl:.2f} nats."
        return (
            status(" ".join(filter(None, [summary, note]))),
            result.from_mean,
            _lines(result.from_samples),
            frame[["dimension", "KL (nats)"]],
            frame.round(4),
        )

    @guarded(5)
    def on_interpolate(name, a, b, steps, method, *decoding):
        with store.use(name) as model:
            path = explore.interpolate_sentences(model, a, b, steps, method, _decoding(*decoding))
        listing = "\n".join(f"{t:.2f}  {s}" for t, s in zip(path.t, path.sentences, strict=True))
        slider = gr.Slider(minimum=0, maximum=len(path.sentences) - 1, value=0, step=1)
        return (
            status(explore.unknown_note(path.unknown)),
            listing,
            path.sentences,
            slider,
            path.at(0),
        )

    def on_slide(sentences: list[str] | None, index: float) -> str:
        if not sentences:
            return ""
        return explore.LatentPath(("", ""), [], list(sentences), "lerp", []).at(index)

    @guarded(3)
    def on_analogy(name, a, b, c, *decoding):
        with store.use(name) as model:
            result = explore.analogy(model, a, b, c, _decoding(*decoding))
        return status(explore.unknown_note(result.unknown)), result.answer, result.c_alone

    def _image_progress(progress: gr.Progress) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            if done % 28 == 0 or done == total:  # about one update per image row
                progress((done, total), desc="pixels drawn")

        return report

    @guarded(2)
    def on_image_samples(name, count, seed, greedy, request: gr.Request, progress=PROGRESS):
        job = jobs.of(request)
        with store.use(name) as model:
            grid = explore.sample_images(
                model, count, seed, greedy, job=job, report=_image_progress(progress)
            )
        return "", grid

    @guarded(2)
    def on_image_path(
        name, steps, method, seed, greedy, end_a, end_b, request: gr.Request, progress=PROGRESS
    ):
        job = jobs.of(request)
        with store.use(name) as model:
            images = images_for(model)
            ends, seeds = None, (1, 2)
            if images is not None:
                ends = explore.pick_images(images, end_a, end_b, model)
            else:
                seeds = (end_a, end_b)
            grid = explore.interpolate_images(
                model,
                steps,
                method,
                seed,
                greedy,
                ends,
                seeds,
                job=job,
                report=_image_progress(progress),
            )
        return "", grid

    def on_stop(request: gr.Request) -> str:
        jobs.of(request).request_stop()
        return status("Stopping…", "stopped")

    @guarded(4)
    def on_card(name):
        model = store.load(name)
        view = explore.card_view(model, store.source(name))
        note = f"From the card's {view.split} results." if view.split else "No results in the card."
        return (
            status(note),
            explore.verdict_words(view.verdict),
            [list(row) for row in view.rows],
            [list(row) for row in view.generation],
        )

    @guarded(5)
    def on_diagnose(name, sentences, iw_samples, request: gr.Request, progress=TQDM_PROGRESS):
        job = jobs.of(request)
        output = tempfile.mkdtemp(prefix="diagnosis-", dir=workdir)
        with store.use(name) as model:
            images = images_for(model) if model_kind(model) == "image_vae" else None
            result = explore.run_diagnosis(
                model,
                name,
                (sentences or "").splitlines(),
                output,
                images,
                int(iw_samples),
                job=job,
            )
        metrics = result.report["metrics"]
        rows = [
            [key, f"{value:.3f}" if isinstance(value, float) else str(value)]
            for key, value in metrics.items()
            if not isinstance(value, list)
        ]
        return (
            status(f"Measured on {metrics['num_examples']} examples (no gaps)."),
            explore.verdict_words(result.report["verdict"]),
            rows,
            result.figures.get("kl_per_dim"),
            result.figures.get("posterior_mean_space"),
        )

    @guarded(3)
    def on_compare(name_a, name_b, operation, text_a, text_b, seed, *decoding):
        if name_a == name_b:
            raise UserError("Choose two different models to compare.")
        columns = []
        for name in (name_a, name_b):
            with store.use(name) as model:
                columns.append(
                    explore.compare_column(
                        model, operation, text_a, text_b, seed, _decoding(*decoding)
                    )
                )
        return "", *columns

    # --- the page ----------------------------------------------------------------------

    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\n\n{INTRO}")
        with gr.Row():
            model = gr.Dropdown(
                choices=names,
                value=first,
                label="Model",
                elem_id="model",
                allow_custom_value=store.allow_any,
                scale=2,
                info="a folder or Hub id may be typed" if store.allow_any else None,
            )
            seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id="seed")
        about = gr.Markdown(elem_id="about")
        with gr.Accordion("Decoding (text models)", open=False):
            with gr.Row():
                strategy = gr.Radio(
                    list(explore.STRATEGIES),
                    value="default",
                    label="Strategy",
                    elem_id="strategy",
                )
                beams = gr.Slider(1, explore.MAX_BEAMS, value=4, step=1, label="Beams")
                max_new = gr.Slider(
                    0,
                    explore.MAX_NEW_TOKENS,
                    value=0,
                    step=1,
                    label="Max new tokens (0: the model's length)",
                )
            with gr.Row():
                temperature = gr.Slider(0.05, 5, value=1.0, step=0.05, label="Temperature")
                top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0: off)")
                top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p")
                allow_unk = gr.Checkbox(value=False, label="Allow <unk> in the text")
        decoding = [strategy, beams, temperature, top_k, top_p, allow_unk, max_new]

        with gr.Tabs():
            with gr.Tab("Sample", id="sample"):
                with gr.Row():
                    count = gr.Slider(1, explore.MAX_SAMPLES, value=5, step=1, label="Sentences")
                    sample_button = gr.Button("Sample", variant="primary", elem_id="sample-run")
                    same_z_button = gr.Button("Same z, other decodings", elem_id="same-z-run")
                sample_status = gr.Markdown(elem_id="sample-status")
                samples = gr.Textbox(
                    label="Samples from the prior",
                    lines=6,
                    interactive=False,
                    elem_id="sample-output",
                )
                same_z = gr.Dataframe(
                    headers=["decoding", "sentence"],
                    label="One z",
                    interactive=False,
                    elem_id="same-z-output",
                )

            with gr.Tab("Reconstruct", id="reconstruct"):
                with gr.Row():
                    sentence = gr.Textbox(
                        label="Sentence",
                        value="the company said it expects higher sales",
                        max_length=4 * explore.MAX_CHARS,
                        elem_id="reconstruct-input",
                        scale=3,
                    )
                    posterior_samples = gr.Slider(
                        0, explore.MAX_POSTERIOR_SAMPLES, value=3, step=1, label="Posterior samples"
                    )
                reconstruct_button = gr.Button(
                    "Reconstruct", variant="primary", elem_id="reconstruct-run"
                )
                reconstruct_status = gr.Markdown(elem_id="reconstruct-status")
                from_mean = gr.Textbox(
                    label="Decoded from the posterior mean",
                    interactive=False,
                    elem_id="reconstruct-output",
                )
                from_samples = gr.Textbox(
                    label="Decoded from posterior samples",
                    lines=3,
                    interactive=False,
                    elem_id="reconstruct-samples",
                )
                kl_chart = gr.BarPlot(
                    x="dimension", y="KL (nats)", label="KL per dimension", elem_id="reconstruct-kl"
                )
                posterior_table = gr.Dataframe(
                    label="Posterior q(z|x) per dimension", interactive=False
                )

            with gr.Tab("Interpolate", id="interpolate"):
                with gr.Row():
                    text_a = gr.Textbox(
                        label="From",
                        value="the market fell sharply",
                        max_length=4 * explore.MAX_CHARS,
                        elem_id="interpolate-a",
                    )
                    text_b = gr.Textbox(
                        label="To",
                        value="investors were cautious",
                        max_length=4 * explore.MAX_CHARS,
                        elem_id="interpolate-b",
                    )
                with gr.Row():
                    steps = gr.Slider(2, explore.MAX_STEPS, value=5, step=1, label="Steps")
                    method = gr.Radio(["lerp", "slerp"], value="lerp", label="Path")
                    path_button = gr.Button(
                        "Interpolate", variant="primary", elem_id="interpolate-run"
                    )
                path_status = gr.Markdown(elem_id="interpolate-status")
                path_listing = gr.Textbox(
                    label="The path, t = 0 … 1",
                    lines=6,
                    interactive=False,
                    elem_id="interpolate-output",
                )
                path_state = gr.State([])
                point = gr.Slider(
                    0, 4, value=0, step=1, label="Move along the path", elem_id="interpolate-slider"
                )
                at_point = gr.Textbox(
                    label="Sentence at this point", interactive=False, elem_id="interpolate-point"
                )

            with gr.Tab("Analogy", id="analogy"):
                gr.Markdown("a : b :: c : ?, answered by decoding μ_c + (μ_b − μ_a).")
                with gr.Row():
                    analogy_a = gr.Textbox(
                        label="a", value="the market fell", max_length=4 * explore.MAX_CHARS
                    )
                    analogy_b = gr.Textbox(
                        label="b", value="the market rose", max_length=4 * explore.MAX_CHARS
                    )
                    analogy_c = gr.Textbox(
                        label="c", value="prices fell", max_length=4 * explore.MAX_CHARS
                    )
                analogy_button = gr.Button("Solve", variant="primary", elem_id="analogy-run")
                analogy_status = gr.Markdown(elem_id="analogy-status")
                analogy_answer = gr.Textbox(label="?", interactive=False, elem_id="analogy-output")
                analogy_c_alone = gr.Textbox(label="c decoded alone", interactive=False)

            with gr.Tab("Images", id="images"):
                gr.Markdown(
                    "Digits drawn pixel by pixel: slow on a CPU (tens of seconds per image); "
                    "the bar shows the progress and Stop ends the work."
                )
                with gr.Row():
                    image_count = gr.Slider(1, explore.MAX_IMAGES, value=4, step=1, label="Images")
                    greedy = gr.Checkbox(value=False, label="Most likely pixels (greedy)")
                    image_button = gr.Button("Sample grid", variant="primary", elem_id="images-run")
                    stop_images = gr.Button("Stop", variant="stop", elem_id="images-stop")
                ends_label = (
                    "Test image indices"
                    if data
                    else "Seeds of the two prior latents the path joins"
                )
                with gr.Row():
                    end_a = gr.Number(
                        value=0 if data else 1, precision=0, label=f"{ends_label}: from"
                    )
                    end_b = gr.Number(value=1 if data else 2, precision=0, label="to")
                    image_steps = gr.Slider(2, explore.MAX_STEPS, value=6, step=1, label="Steps")
                    image_method = gr.Radio(["lerp", "slerp"], value="lerp", label="Path")
                    image_path_button = gr.Button("Interpolation grid", elem_id="images-path-run")
                image_status = gr.Markdown(elem_id="images-status")
                image = gr.Image(
                    label="Images", type="pil", interactive=False, elem_id="images-output"
                )

            with gr.Tab("Diagnose", id="diagnose"):
                card_button = gr.Button("Read the card", elem_id="card-run")
                card_status = gr.Markdown(elem_id="card-status")
                card_verdict = gr.Markdown(elem_id="card-verdict")
                with gr.Row():
                    card_table = gr.Dataframe(
                        headers=["measure", "value"], label="The card's numbers", interactive=False
                    )
                    generation_table = gr.Dataframe(
                        headers=["measure", "value"], label="Generation report", interactive=False
                    )
                gr.Markdown(
                    "Run `vaehub diagnose` here on the sentences below (text) or the test "
                    "images (image models, with --data): KL per dimension, MI, active units "
                    "and the verdict by the same rule; the gaps are left to the command."
                )
                probe = gr.Textbox(
                    label="Sentences, one per line",
                    lines=6,
                    value=DIAGNOSE_SENTENCES,
                    elem_id="diagnose-input",
                )
                with gr.Row():
                    iw = gr.Slider(1, 500, value=50, step=1, label="K of the IW-NLL")
                    diagnose_button = gr.Button(
                        "Diagnose", variant="primary", elem_id="diagnose-run"
                    )
                    stop_diagnose = gr.Button("Stop", variant="stop")
                diagnose_status = gr.Markdown(elem_id="diagnose-status")
                diagnose_verdict = gr.Markdown(elem_id="diagnose-verdict")
                diagnose_table = gr.Dataframe(headers=["measure", "value"], interactive=False)
                with gr.Row():
                    kl_figure = gr.Image(
                        label="KL per dimension", type="filepath", interactive=False
                    )
                    mean_space = gr.Image(
                        label="Posterior mean space (2-d latents)",
                        type="filepath",
                        interactive=False,
                    )

            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "Two models on the same input and seed: a collapsed model decodes the same "
                    "sentence whatever its input."
                )
                with gr.Row():
                    left = gr.Dropdown(
                        choices=names,
                        value=_pick(names, "elbo", first),
                        label="Model A",
                        elem_id="compare-a",
                    )
                    right = gr.Dropdown(
                        choices=names,
                        value=_pick(names, "aggressive", first),
                        label="Model B",
                        elem_id="compare-b",
                    )
                    operation = gr.Radio(
                        list(explore.COMPARE_OPERATIONS), value="reconstruct", label="Do"
                    )
                with gr.Row():
                    compare_a = gr.Textbox(
                        label="Sentence",
                        max_length=4 * explore.MAX_CHARS,
                        value="the company said it expects higher sales",
                        elem_id="compare-input",
                    )
                    compare_b = gr.Textbox(
                        label="Second sentence (interpolate)",
                        max_length=4 * explore.MAX_CHARS,
                        value="stocks fell sharply",
                    )
                compare_button = gr.Button("Compare", variant="primary", elem_id="compare-run")
                compare_status = gr.Markdown(elem_id="compare-status")
                with gr.Row():
                    compare_left = gr.Textbox(
                        label="Model A", lines=6, interactive=False, elem_id="compare-output-a"
                    )
                    compare_right = gr.Textbox(
                        label="Model B", lines=6, interactive=False, elem_id="compare-output-b"
                    )

        # --- events --------------------------------------------------------------------
        model.change(describe, model, about)
        app.load(describe, model, about)
        sample_button.click(on_sample, [model, count, seed, *decoding], [sample_status, samples])
        same_z_button.click(on_same_z, [model, seed, *decoding], [sample_status, same_z])
        reconstruct_button.click(
            on_reconstruct,
            [model, sentence, posterior_samples, seed, *decoding],
            [reconstruct_status, from_mean, from_samples, kl_chart, posterior_table],
        )
        sentence.submit(
            on_reconstruct,
            [model, sentence, posterior_samples, seed, *decoding],
            [reconstruct_status, from_mean, from_samples, kl_chart, posterior_table],
        )
        path_button.click(
            on_interpolate,
            [model, text_a, text_b, steps, method, *decoding],
            [path_status, path_listing, path_state, point, at_point],
        )
        point.change(on_slide, [path_state, point], at_point)
        analogy_button.click(
            on_analogy,
            [model, analogy_a, analogy_b, analogy_c, *decoding],
            [analogy_status, analogy_answer, analogy_c_alone],
        )
        sampling = image_button.click(
            on_image_samples, [model, image_count, seed, greedy], [image_status, image]
        )
        walking = image_path_button.click(
            on_image_path,
            [model, image_steps, image_method, seed, greedy, end_a, end_b],
            [image_status, image],
        )
        stop_images.click(on_stop, None, image_status, cancels=[sampling, walking])
        card_button.click(on_card, model, [card_status, card_verdict, card_table, generation_table])
        diagnosing = diagnose_button.click(
            on_diagnose,
            [model, probe, iw],
            [diagnose_status, diagnose_verdict, diagnose_table, kl_figure, mean_space],
        )
        stop_diagnose.click(on_stop, None, diagnose_status, cancels=[diagnosing])
        compare_button.click(
            on_compare,
            [left, right, operation, compare_a, compare_b, seed, *decoding],
            [compare_status, compare_left, compare_right],
        )
    return app


def _pick(names: list[str], word: str, fallback: str | None) -> str | None:
    """The first model whose name holds `word` (the comparison's defaults)."""
    return next((name for name in names if word in name), fallback)


def launch(
    app: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
) -> str:
    """Serve the page; returns its local URL (and blocks unless `block=False`)."""
    app.queue(default_concurrency_limit=1)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        show_error=False,
        quiet=not block,
        footer_links=["gradio"],
    )
    return url
