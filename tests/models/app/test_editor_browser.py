"""The editor in a real browser: headless Chromium (Playwright) drives the page served on a free loopback port.

Each test uploads files, presses the tab's button, downloads the result and checks it against
the Python API for the same inputs and seed (within 1/255: the PNG round trip), and checks that
a bad upload shows the CLI's one-line error. The servers listen on 127.0.0.1 only and are gone
after their test.

Skipped when Chromium (``/usr/bin/chromium``), Playwright or Gradio is missing, unless the
``CI`` environment variable is set (``.ci/run`` installs them: there they must run).
``CONDNORM_SCREENSHOTS=<folder>`` saves a screenshot of each tab there;
``CONDNORM_EDITOR_CHECKPOINT=<ckpt>`` and ``CONDNORM_EDITOR_RAIN_CHECKPOINT=<ckpt>`` serve those
mask-to-image and RAIN checkpoints (trained demos, for the screenshots) instead of tiny untrained ones.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import infer
from models.app import MaskToImage, RegionStyles, StyleTransferPipeline
from models.app.editor import Workspace
from models.data.io import load_label, load_rgb
from models.data.label_layout import LabelLayout
from models.data.shapes import write_shapes
from models.sean.codes import RegionCodes, mix_region_codes
from tests.models.app.tiny_models import tiny_checkpoint, tiny_rain_checkpoint
from tests.models.networks.adain_official import save_official

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
MISSING = [name for name in ("gradio", "playwright") if importlib.util.find_spec(name) is None]
MISSING += [] if Path(CHROMIUM).exists() else [CHROMIUM]
pytestmark = pytest.mark.skipif(bool(MISSING) and not IN_CI, reason=f"the browser tests need {MISSING}")
TOLERANCE = 1 / 255 + 1e-6  # 8-bit PNG rounding
TIMEOUT_MS = 30_000


# ---------------------------------------------------------------------------------------------- files and models
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Masks, photos, bad uploads, tiny models (and the AdaIN weights) for every tab."""
    root = tmp_path_factory.mktemp("editor")
    masks = write_shapes(root / "labels", 2, images_dir=root / "photos", size=64)
    out = {"mask": masks[0], "reference_mask": masks[1], "reference": root / "photos" / masks[1].name,
           "content": root / "photos" / masks[0].name, "bad_ids": root / "bad_ids.png",
           "broken": root / "broken.png", "style2": root / "style2.png"}
    Image.fromarray(np.array([[0, 9], [1, 7]], dtype=np.uint8)).save(out["bad_ids"])
    out["broken"].write_text("not an image")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(out["style2"])
    checkpoint = os.environ.get("CONDNORM_EDITOR_CHECKPOINT")
    out["spade"] = Path(checkpoint) if checkpoint else tiny_checkpoint(root, LabelLayout(6, use_instance=True,
                                                                                         dataset_mode="shapes"))
    rain = os.environ.get("CONDNORM_EDITOR_RAIN_CHECKPOINT")
    out["rain"] = Path(rain) if rain else tiny_rain_checkpoint(root, LabelLayout(6, dataset_mode="shapes"))
    out["vgg"], out["decoder"], *_ = save_official(root)
    return out


# ---------------------------------------------------------------------------------------------- server and browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net lists them) of the sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


@contextmanager
def _served(ws: Workspace) -> Iterator[str]:
    """Serve ``ws`` on a free loopback port; check it listens there only, and is closed afterwards."""
    from models.app.editor.app import serve

    port = _free_port()
    demo = serve(ws, port=port, block=False)
    try:
        addresses = _listening(port)
        assert addresses and set(addresses) <= LOOPBACK, addresses  # nothing on a non-loopback address
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()
    assert not _listening(port)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def _page(browser: Any, url: str, tab: str) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        page.get_by_role("tab", name=tab).click()
        yield page
    finally:
        page.close()


# ---------------------------------------------------------------------------------------------- page helpers
def _upload(page: Any, elem_id: str, *paths: Path) -> None:
    """Upload ``paths`` into a file box (clearing the file it shows first)."""
    box = page.locator(f"#{elem_id}")
    if box.locator("input[type=file]").count() == 0:
        box.get_by_role("button", name="Clear").click()
    box.locator("input[type=file]").set_input_files([str(p) for p in paths])


def _status(page: Any, prefix: str, starts: str, previous: str = "") -> str:
    """Wait for the tab's status line to start with ``starts`` (and differ from ``previous``); return it."""
    page.wait_for_function("([sel, s, prev]) => { const v = document.querySelector(sel)?.value;"
                           " return v && v.startsWith(s) && v !== prev; }",
                           arg=[f"#{prefix}-status textarea", starts, previous])
    return page.locator(f"#{prefix}-status textarea").input_value()


def _download(page: Any, elem_id: str, previous: str | None, target: Path) -> tuple[str, Path]:
    """Wait for a new file in the download box ``elem_id``, fetch it to ``target``; (its href, target)."""
    page.wait_for_function("([sel, prev]) => { const a = document.querySelector(sel); return a && a.href !== prev; }",
                           arg=[f"#{elem_id} a", previous])
    href = page.locator(f"#{elem_id} a").first.get_attribute("href")
    target.write_bytes(page.request.get(href).body())
    return href, target


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("CONDNORM_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _cli_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert infer.cli(argv) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def _same_error(shown: str, cli: str, name: str) -> None:
    """The page's line equals the CLI's, up to where the file lives (the upload is a copy)."""
    pattern = rf"\S*/{re.escape(name)}"
    assert re.sub(pattern, name, shown) == re.sub(pattern, name, cli), (shown, cli)


# ---------------------------------------------------------------------------------------------- tests
def test_mask_to_image_tab_gives_the_api_image(browser: Any, files: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    model = MaskToImage.load(files["spade"])
    ws = Workspace(model, None, tmp_path / "results")
    with _served(ws) as url, _page(browser, url, "Mask to image") as page:
        _upload(page, "m2i-upload", files["mask"])
        assert "from shapes_1_000000.png" in _status(page, "m2i", "read a 64×64 mask of")
        page.locator("#m2i-seed input").fill("3")
        page.click("#m2i-generate")
        href, got = _download(page, "m2i-download", None, tmp_path / "got.png")
        want = model.generate(files["mask"], seed=3)[0]
        torch.testing.assert_close(load_rgb(got), want, atol=TOLERANCE, rtol=0)
        _, mask = _download(page, "m2i-mask-download", None, tmp_path / "mask.png")
        assert torch.equal(load_label(mask), load_label(files["mask"]))
        assert "generated (seed 3) in" in page.locator("#m2i-caption").inner_text()
        _screenshot(page, "editor_mask_to_image.png")

        page.locator("#m2i-canvas").scroll_into_view_if_needed()
        page.get_by_label("Fill with class").click()
        page.get_by_role("option", name="1 ground").click()
        page.click("#m2i-fill")
        _status(page, "m2i", "filled with 1 ground")
        page.click("#m2i-generate")
        _, filled = _download(page, "m2i-download", href, tmp_path / "filled.png")
        want = model.generate_ids([torch.ones(model.output_size, dtype=torch.long)], seed=3)[0]
        torch.testing.assert_close(load_rgb(filled), want, atol=TOLERANCE, rtol=0)

        shown = ""
        for bad in ("bad_ids", "broken"):
            _upload(page, "m2i-upload", files[bad])
            shown = _status(page, "m2i", "error: ", shown)
            cli = _cli_line(capsys, ["spade", "--checkpoint", str(files["spade"]), "--labels", str(files[bad]),
                                     "--out", str(tmp_path / "cli")])
            _same_error(shown, cli, files[bad].name)


def test_new_sample_and_style_image_of_a_vae_model(browser: Any, files: dict[str, Path], tmp_path: Path) -> None:
    model = MaskToImage.load(tiny_checkpoint(tmp_path, LabelLayout(6, dataset_mode="shapes"), use_vae=True))
    with _served(Workspace(model, None, tmp_path / "results")) as url, _page(browser, url, "Mask to image") as page:
        _upload(page, "m2i-upload", files["mask"])
        _status(page, "m2i", "read a 64×64 mask")
        page.click("#m2i-new-sample")
        href, got = _download(page, "m2i-download", None, tmp_path / "sample.png")
        seed = int(page.locator("#m2i-seed input").input_value())
        assert f"generated (seed {seed}) in" in page.locator("#m2i-caption").inner_text()
        torch.testing.assert_close(load_rgb(got), model.generate(files["mask"], seed=seed)[0], atol=TOLERANCE, rtol=0)
        _upload(page, "m2i-style", files["reference"])
        page.wait_for_function("() => document.querySelectorAll('#m2i-style a').length > 0")
        page.click("#m2i-generate")
        _, styled = _download(page, "m2i-download", href, tmp_path / "styled.png")
        want = model.generate(files["mask"], style=files["reference"])[0]
        torch.testing.assert_close(load_rgb(styled), want, atol=TOLERANCE, rtol=0)


def test_region_styles_tab_gives_the_api_image_and_codes(browser: Any, files: dict[str, Path],
                                                         tmp_path: Path) -> None:
    model = RegionStyles.load(files["rain"])
    with _served(Workspace(model, None, tmp_path / "results")) as url, _page(browser, url, "Region styles") as page:
        _upload(page, "rain-upload", files["mask"])
        _status(page, "rain", "read a 64×64 mask")
        _upload(page, "rain-reference", files["reference"])
        _upload(page, "rain-reference-mask", files["reference_mask"])
        page.wait_for_function("() => document.querySelectorAll('#rain-reference-mask a').length > 0")
        page.click("#rain-apply")
        _status(page, "rain", "applied")
        page.click("#rain-generate")
        _, got = _download(page, "rain-download", None, tmp_path / "got.png")
        _, codes_file = _download(page, "rain-codes-download", None, tmp_path / "codes.safetensors")
        codes = mix_region_codes([(RegionCodes.empty(model.label_nc, model.style_dim), None),
                                  (model.codes(files["reference"], files["reference_mask"]), None)])
        torch.testing.assert_close(load_rgb(got), model.generate(files["mask"], codes, seed=0), atol=TOLERANCE,
                                   rtol=0)
        saved = RegionCodes.load(codes_file)
        assert torch.equal(saved.present, codes.present) and torch.allclose(saved.codes, codes.codes)
        assert "styled regions: 0 sky" in page.locator("#rain-summary").inner_text()
        _screenshot(page, "editor_region_styles.png")
        _upload(page, "rain-codes-upload", codes_file)
        _status(page, "rain", "loaded the codes of")
        RegionCodes.empty(3, model.style_dim).save(tmp_path / "other.safetensors")  # another model's codes
        _upload(page, "rain-codes-upload", tmp_path / "other.safetensors")
        assert _status(page, "rain", "error: ").endswith(
            f"other.safetensors: codes of 3 regions × {model.style_dim} do not fit a generator with label_nc=6, "
            f"style_dim={model.style_dim}")


def test_style_transfer_tab_gives_the_api_image(browser: Any, files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pipe = StyleTransferPipeline.load(vgg=files["vgg"], decoder=files["decoder"])
    with _served(Workspace(None, pipe, tmp_path / "results")) as url, _page(browser, url, "Style transfer") as page:
        _upload(page, "st-content", files["content"])
        _upload(page, "st-styles", files["reference"], files["style2"])
        page.wait_for_function("() => document.querySelectorAll('#st-styles a').length == 2")
        page.locator("#st-weights textarea, #st-weights input").first.fill("1 3")
        page.locator("#st-alpha input[type=number]").fill("0.8")
        page.locator("#st-alpha input[type=number]").press("Enter")
        page.locator("#st-content-size input").fill("0")
        page.locator("#st-style-size input").fill("0")
        page.click("#st-run")
        _, got = _download(page, "st-download", None, tmp_path / "got.png")
        want = pipe.transfer(files["content"], [files["reference"], files["style2"]], alpha=0.8, style_weights=[1, 3],
                             content_size=0, style_size=0)
        torch.testing.assert_close(load_rgb(got), want, atol=TOLERANCE, rtol=0)
        assert "stylised (α 0.8) in" in page.locator("#st-caption").inner_text()
        _screenshot(page, "editor_style_transfer.png")

        page.locator("#st-weights textarea, #st-weights input").first.fill("")
        _upload(page, "st-mask", files["broken"])
        page.wait_for_function("() => document.querySelectorAll('#st-mask a').length > 0")
        page.click("#st-run")
        shown = _status(page, "st", "error: ")
        cli = _cli_line(capsys, ["adain", "--content", str(files["content"]), "--style", str(files["reference"]),
                                 str(files["style2"]), "--mask", str(files["broken"]), "--vgg", str(files["vgg"]),
                                 "--decoder", str(files["decoder"]), "--out", str(tmp_path / "cli")])
        _same_error(shown, cli, files["broken"].name)


def test_serve_command_listens_on_loopback_only_and_stops_on_ctrl_c(files: dict[str, Path]) -> None:
    port = _free_port()
    root = Path(infer.__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    server = subprocess.Popen([sys.executable, str(root / "infer.py"), "serve", "--checkpoint", str(files["spade"]),
                               "--port", str(port), "--device", "cpu"], env=env, cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert set(_listening(port)) <= LOOPBACK and _listening(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"condnorm editor" in page.read()
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, output
    assert "(Mask to image); Ctrl-C stops it" in output and "editor stopped" in output
    assert not _listening(port)
