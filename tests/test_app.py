"""The latent explorer (`vaehub.app`): its tab functions on the shipped checkpoints, and the
page itself served on loopback and driven in a real headless Chromium."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from helpers import free_port
from packaging.requirements import Requirement

from vaehub import DeltaVAEConfig, DeltaVAEModel
from vaehub.app import explore
from vaehub.app.models import Cancelled, Job, ModelStore, UserError
from vaehub.evaluation.diagnose import verdict

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "model_cards"
FLAGSHIP, ELBO, LM, DIGITS = (
    "ptb-lm-free-bits-aggressive",
    "ptb-vae-elbo",
    "ptb-lstm-lm",
    "mnist-delta-vae-ar1",
)
DEFAULT = explore.Decoding()



@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore([str(CARDS / name) for name in (FLAGSHIP, ELBO, LM, DIGITS)])


# --- the tabs' work, on the shipped checkpoints -------------------------------------------


def test_samples_follow_the_seed_and_the_count_is_capped(store):
    with store.use(FLAGSHIP) as model:
        first = explore.sample_sentences(model, 3, 7, DEFAULT)
        again = explore.sample_sentences(model, 3, 7, DEFAULT)
        with pytest.raises(UserError, match="from 1 to 16"):
            explore.sample_sentences(model, explore.MAX_SAMPLES + 1, 0, DEFAULT)
        with pytest.raises(UserError, match="Temperature"):
            explore.sample_sentences(model, 1, 0, explore.Decoding("sample", temperature=0))
    assert len(first) == 3 and all(isinstance(s, str) and s for s in first)
    assert first == again


def test_reconstruct_shows_the_posterior_and_counts_unknown_words(store):
    with store.use(FLAGSHIP) as model:
        result = explore.reconstruct_sentence(
            model, "the company said it expects xyzzy sales", 2, 0, DEFAULT
        )
        own_decoding = model.reconstruct(["the company said it expects xyzzy sales"])[0]
    assert result.unknown == ["xyzzy"]
    assert "1 word(s)" in explore.unknown_note(result.unknown)
    assert len(result.mean) == len(result.std) == len(result.kl_per_dim) == 32
    assert all(s > 0 for s in result.std)
    # The flagship's code is in use: this sentence costs nats, spread over the dimensions.
    assert result.kl == pytest.approx(sum(result.kl_per_dim), rel=1e-3) and result.kl > 1
    assert result.from_mean == own_decoding  # what `vaehub reconstruct` prints
    assert len(result.from_samples) == 2
    assert list(result.table().columns) == ["dimension", "mean", "std", "KL (nats)"]


def test_the_collapsed_checkpoint_decodes_the_same_whatever_the_input(store):
    sentences = ("the company said it expects higher sales", "stocks fell sharply in tokyo")
    decoded = {}
    for name in (ELBO, FLAGSHIP):
        with store.use(name) as model:
            decoded[name] = [
                explore.reconstruct_sentence(model, s, 0, 0, DEFAULT) for s in sentences
            ]
    elbo, flagship = decoded[ELBO], decoded[FLAGSHIP]
    assert elbo[0].from_mean == elbo[1].from_mean and elbo[0].kl < 0.1
    assert flagship[0].from_mean != flagship[1].from_mean


def test_interpolation_lists_the_path_and_the_slider_walks_it(store):
    with store.use(FLAGSHIP) as model:
        path = explore.interpolate_sentences(
            model, "the market fell sharply", "investors were cautious", 4, "slerp", DEFAULT
        )
        with pytest.raises(UserError, match="from 2 to 12"):
            explore.interpolate_sentences(model, "a b", "c d", 40, "lerp", DEFAULT)
    assert path.t == pytest.approx([0, 1 / 3, 2 / 3, 1]) and len(path.sentences) == 4
    assert path.at(0) == path.sentences[0] and path.at(3.0) == path.sentences[3]
    assert path.at(99) == path.sentences[-1] and path.at("x") == path.sentences[0]


def test_analogy_decodes_the_shifted_mean(store):
    a, b, c = "the market fell", "the market rose", "prices fell"
    with store.use(FLAGSHIP) as model:
        result = explore.analogy(model, a, b, c, DEFAULT)
        c_itself = model.reconstruct([c])[0]
    # With no shift c decodes as its own reconstruction: the arithmetic is on the means.
    assert result.c_alone == c_itself
    assert result.shift_norm > 0 and isinstance(result.answer, str)


def test_card_verdict_is_the_rule_of_vaehub_diagnose(store):
    verdicts = {}
    for name in (FLAGSHIP, ELBO, DIGITS):
        with store.use(name) as model:
            view = explore.card_view(model, store.source(name))
            metrics = model.evaluation_results["test"]["metrics"]
            rate = float(model.config.committed_rate or 0.0)
        assert view.verdict == verdict(metrics, rate, None)
        verdicts[name] = view.verdict["collapsed"]
        labels = [label for label, _ in view.rows]
        assert "KL (nats)" in labels and "active units" in labels
    assert verdicts == {FLAGSHIP: False, ELBO: True, DIGITS: True}
    with store.use(FLAGSHIP) as model:
        rows = dict(explore.card_view(model, store.source(FLAGSHIP)).generation)
    assert rows["samples count"] == "100"  # the flagship's generation report
    assert "in use" in explore.verdict_words(
        explore.card_view(model, store.source(FLAGSHIP)).verdict
    )


def test_bad_input_gets_a_message(store, tmp_path):
    with store.use(FLAGSHIP) as model:
        for text, message in (("   ", "empty"), ("word " * 80, "at most 300")):
            with pytest.raises(UserError, match=message):
                explore.reconstruct_sentence(model, text, 0, 0, DEFAULT)
    with store.use(LM) as model, pytest.raises(UserError, match="no latent"):
        explore.reconstruct_sentence(model, "the market fell", 0, 0, DEFAULT)
    with store.use(DIGITS) as model, pytest.raises(UserError, match="needs a text VAE"):
        explore.analogy(model, "a", "b", "c", DEFAULT)
    with pytest.raises(UserError, match="--allow-any-model"):
        store.load(str(CARDS / "ptb-vae-aggressive"))
    assert store.names == [FLAGSHIP, ELBO, LM, DIGITS]

    (tmp_path / "not-a-model").mkdir()
    open_store = ModelStore([str(CARDS / FLAGSHIP)], allow_any=True)
    with pytest.raises(UserError, match="holds no config.json"):
        open_store.load(str(tmp_path / "not-a-model"))
    with pytest.raises(UserError, match="neither a folder"):
        open_store.load("../../etc/passwd; rm -rf /")
    assert open_store.names == [FLAGSHIP]  # a failed name typed in the page is not kept


def test_text_is_escaped_for_the_page():
    shown = explore.escape("<unk> <script>alert(1)</script> *bold* [link](x)")
    assert "<" not in shown and ">" not in shown
    assert "\\*bold\\*" in shown and "\\[link\\]" in shown
    assert explore.unknown_note(["<b>"]) == (
        "1 word(s) are not in the model's vocabulary and became &lt;unk&gt;: &lt;b&gt;."
    )


def test_image_sampling_reports_progress_and_stops_on_request(store):
    job, seen = Job(), []

    def report(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 20:
            job.request_stop()

    with store.use(DIGITS) as model:
        with pytest.raises(Cancelled):
            explore.sample_images(model, 2, 0, False, job=job, report=report)
        # The hooks are gone: the model runs as before once the job is over.
        assert not any(module._forward_pre_hooks for module in model.modules())
    assert seen[0] == (1, 28 * 28) and seen[-1] == (20, 28 * 28)


def test_image_grid_and_a_path_between_two_test_digits():
    torch.manual_seed(0)
    config = DeltaVAEConfig(
        image_size=8,
        latent_size=2,
        encoder_channels=8,
        encoder_layers=2,
        decoder_channels=8,
        decoder_layers=2,
        decoder_first_kernel_size=5,
    )
    model = DeltaVAEModel(config).eval()
    grid = explore.sample_images(model, 3, 0, False)
    again = explore.sample_images(model, 3, 0, False)
    # save_image_grid: 2-pixel borders, drawn 4 times larger.
    assert grid.size == ((3 * 10 + 2) * 4, 10 * 4 + 8) and grid.tobytes() == again.tobytes()
    images = explore.test_images("digits")
    ends = explore.pick_images(images, 3, 7, model)
    row = explore.interpolate_images(model, 4, "lerp", 0, True, ends=ends)
    assert row.size == ((6 * 10 + 2) * 4, 10 * 4 + 8)
    prior_row = explore.interpolate_images(model, 3, "slerp", 0, True, end_seeds=(1, 2))
    assert prior_row.size == ((3 * 10 + 2) * 4, 10 * 4 + 8)
    with pytest.raises(UserError, match="Image index"):
        explore.pick_images(images, 0, 10**6, model)


@pytest.mark.slow
def test_diagnose_from_the_page_is_vaehub_diagnose(store, tmp_path):
    probe = [
        "the company said it expects higher sales",
        "stocks fell sharply in tokyo",
        "the bank reported a loss",
        "investors were cautious",
    ]
    with store.use(FLAGSHIP) as model:
        result = explore.run_diagnosis(model, FLAGSHIP, probe, str(tmp_path), iw_samples=2)
        with pytest.raises(UserError, match="at least two"):
            explore.run_diagnosis(model, FLAGSHIP, ["one"], str(tmp_path))
    report = result.report
    assert report["verdict"] == verdict(report["metrics"], report["committed_rate"], None)
    assert report["metrics"]["num_examples"] == 4 and len(report["metrics"]["kl_per_dim"]) == 32
    assert os.path.getsize(result.figures["kl_per_dim"]) > 1000  # the command's own chart
    assert (tmp_path / "report.md").read_text().startswith(f"# Diagnosis of {FLAGSHIP}")


def test_the_core_commands_never_import_gradio():
    script = (
        "import sys, contextlib, io\n"
        "import vaehub, vaehub.commands.main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    vaehub.commands.main.main(['--help'])\n"
        "assert 'app' in out.getvalue(), out.getvalue()\n"
        "print('gradio' in sys.modules)\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_the_command_line_is_safe_by_default():
    from vaehub.app.launch import build_parser, main

    args = build_parser().parse_args([])
    assert (args.host, args.share, args.allow_any_model, args.models) == (
        "127.0.0.1",
        False,
        False,
        [],
    )
    assert main(["--port", "70000"]) == 2
    assert main([str(ROOT / "README.md")]) == 1  # a file is not a model folder


# --- the page in a real browser -----------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium with its chromedriver on this machine (apt-get install chromium "
    "chromium-driver); CI installs them",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The explorer on a free loopback port (flagship, ELBO, LM) and a headless Chromium
    on it; screenshots go to $VAEHUB_APP_SCREENSHOTS or the test's own folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from vaehub.app.ui import build_app, launch

    store = ModelStore([str(CARDS / name) for name in (FLAGSHIP, ELBO, LM)])
    app = build_app(store)
    url = launch(app, port=free_port(), block=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--disable-gpu",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    shots = Path(os.environ.get("VAEHUB_APP_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(url)
        wait(driver, lambda d: FLAGSHIP in text_of(d, "#about"))
        yield driver, shots
    finally:
        driver.quit()
        app.close()


def wait(driver, condition, seconds: float = 90):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition)


def find(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def text_of(driver, selector: str) -> str:
    from selenium.common.exceptions import NoSuchElementException

    try:
        return find(driver, selector).text
    except NoSuchElementException:
        return ""


def value_of(driver, selector: str) -> str:
    return find(driver, f"{selector} textarea").get_attribute("value") or ""


def open_tab(driver, title: str) -> None:
    from selenium.webdriver.common.by import By

    tab = next(
        t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == title
    )
    tab.click()


def type_into(driver, selector: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = find(driver, f"{selector} textarea")
    # Keys, not `clear()`: the page only sees what arrives as input events.
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    if text:
        box.send_keys(text)


def assert_no_traceback(driver) -> None:
    source = driver.page_source
    assert "Traceback" not in source and 'File "' not in source


@needs_browser
@pytest.mark.slow
def test_browser_reconstruct_reads_the_decoded_sentence(page):
    driver, shots = page
    open_tab(driver, "Reconstruct")
    type_into(driver, "#reconstruct-input", "the company said it expects qwxz sales")
    find(driver, "#reconstruct-run").click()
    wait(driver, lambda d: value_of(d, "#reconstruct-output"))
    with store_for_check() as model:
        expected = model.reconstruct(["the company said it expects qwxz sales"])[0]
    assert value_of(driver, "#reconstruct-output") == expected
    status = text_of(driver, "#reconstruct-status")
    assert "1 word(s)" in status and "<unk>: qwxz" in status and "KL of this sentence" in status
    driver.save_screenshot(str(shots / "reconstruct.png"))
    assert_no_traceback(driver)


@needs_browser
@pytest.mark.slow
def test_browser_slider_moves_along_the_interpolation(page):
    from selenium.webdriver.common.keys import Keys

    driver, shots = page
    open_tab(driver, "Interpolate")
    find(driver, "#interpolate-run").click()
    wait(driver, lambda d: value_of(d, "#interpolate-output").count("\n") == 4)
    listing = [
        line.split("  ", 1)[1] for line in value_of(driver, "#interpolate-output").split("\n")
    ]
    assert value_of(driver, "#interpolate-point") == listing[0]
    number = find(driver, "#interpolate-slider input[type=number]")
    number.send_keys(Keys.CONTROL, "a")
    number.send_keys("4", Keys.ENTER)
    wait(driver, lambda d: value_of(d, "#interpolate-point") == listing[4])
    assert listing[4] != listing[0]
    driver.save_screenshot(str(shots / "interpolate.png"))


@needs_browser
@pytest.mark.slow
def test_browser_errors_are_messages_not_tracebacks(page):
    driver, shots = page
    open_tab(driver, "Reconstruct")
    before = value_of(driver, "#reconstruct-output")
    type_into(driver, "#reconstruct-input", "")
    find(driver, "#reconstruct-run").click()
    wait(driver, lambda d: "Type the sentence first" in text_of(d, "#reconstruct-status"))
    assert text_of(driver, "#reconstruct-status").startswith("Error:")
    type_into(driver, "#reconstruct-input", "word " * 80)
    find(driver, "#reconstruct-run").click()
    wait(driver, lambda d: "at most 300" in text_of(d, "#reconstruct-status"))
    assert value_of(driver, "#reconstruct-output") == before  # the old result is kept
    assert_no_traceback(driver)
    open_tab(driver, "Compare")
    find(driver, "#compare-run").click()  # ELBO beside the flagship on one sentence
    wait(driver, lambda d: value_of(d, "#compare-output-a") and value_of(d, "#compare-output-b"))
    assert value_of(driver, "#compare-output-a") != value_of(driver, "#compare-output-b")
    driver.save_screenshot(str(shots / "compare.png"))


@needs_browser
@pytest.mark.slow
def test_browser_screenshots_of_the_other_tabs(page):
    driver, shots = page
    open_tab(driver, "Sample")
    find(driver, "#sample-run").click()
    wait(driver, lambda d: value_of(d, "#sample-output").count("\n") == 4)
    driver.save_screenshot(str(shots / "sample.png"))
    open_tab(driver, "Analogy")
    find(driver, "#analogy-run").click()
    wait(driver, lambda d: value_of(d, "#analogy-output"))
    driver.save_screenshot(str(shots / "analogy.png"))
    open_tab(driver, "Diagnose")
    find(driver, "#card-run").click()
    wait(driver, lambda d: "in use" in text_of(d, "#card-verdict"))
    driver.save_screenshot(str(shots / "diagnose.png"))
    open_tab(driver, "Images")
    find(driver, "#images-run").click()  # a text model: the tab says so
    wait(driver, lambda d: "needs an image VAE" in text_of(d, "#images-status"))
    driver.save_screenshot(str(shots / "images.png"))
    assert_no_traceback(driver)
    assert len(list(shots.glob("*.png"))) >= 4


_CHECK_STORE: list[ModelStore] = []


def store_for_check():
    """The flagship, loaded apart from the page's, to compute what the page should show."""
    if not _CHECK_STORE:
        _CHECK_STORE.append(ModelStore([str(CARDS / FLAGSHIP)]))
    return _CHECK_STORE[0].use(FLAGSHIP)


# --- the Space folder ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_space_runs_as_a_space_would(tmp_path):
    space = ROOT / "spaces" / "latent-explorer"
    front = (space / "README.md").read_text(encoding="utf-8").split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    # Its requirements are what this environment has: vaehub with the app extra, torch.
    for line in (space / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            requirement = Requirement(line)
            installed = importlib.metadata.version(requirement.name)
            assert requirement.specifier.contains(installed.split("+")[0]), (line, installed)
    # Run where a Space runs it: its folder alone, the port given by the environment.
    workdir = tmp_path / "space"
    shutil.copytree(space, workdir)
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "GRADIO_SERVER_PORT": str(port),
        "VAEHUB_MODELS": f"{CARDS / FLAGSHIP},{CARDS / ELBO}",
    }
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=workdir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        config = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as r:
                    config = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert config is not None, process.communicate(timeout=10)[0].decode()[-3000:]
        assert "vaehub latent explorer" in config
        assert FLAGSHIP in config and ELBO in config and "model_cards" not in config
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_hub_id_that_does_not_exist_gets_a_message(hub_server):
    # A real Hub API (olah on loopback, see hub_server.py) that holds no such repository.
    open_store = ModelStore([], allow_any=True)
    with pytest.raises(UserError, match="not found"):
        open_store.load("vaehub/no-such-model")
    assert open_store.names == []


SILENT_HUB_SCRIPT = """
import vaehub
from vaehub.app.models import ModelStore, UserError

vaehub.utils.network.set_hub_timeout(1)
store = ModelStore([], allow_any=True)
try:
    store.load("org/x")
except UserError as error:
    print("message", str(error).replace(chr(10), " "))
else:
    print("message none")
print("kept", store.names)
"""


def test_a_server_that_does_not_answer_gets_a_message_naming_it():
    from helpers import run_against_a_silent_server

    completed, endpoint = run_against_a_silent_server(SILENT_HUB_SCRIPT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = {line.split(" ", 1)[0]: line for line in completed.stdout.splitlines()}
    assert lines["message"].startswith("message Could not open org/x:"), lines["message"]
    assert f"the Hub server {endpoint.removeprefix('http://')} did not answer within 1 s" in (
        lines["message"]
    )
    assert lines["kept"] == "kept []"  # a name that failed is not offered again
