"""OCR engines: the VLM client against a local stand-in vision server, and tesseract's setup checks.

The stand-in answers ``POST /v1/chat/completions`` only when the request carries a
PNG page image as a base64 data URL, with deterministic text naming the image size;
faults queued in ``faults`` answer the next requests instead (an error status, a hang,
garbage, an answer cut at ``length``, or one whose front matter says the page is turned).
"""

import base64
import dataclasses
import json
import re
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymupdf
import pytest

from curation.drops import marked
from curation.sources import ocr as ocr_module
from curation.sources.ocr import OLMOCR_PROMPT, OcrConfig, OcrUnavailableError, VlmConfig, check_tesseract, open_ocr
from curation.sources.pdf import PdfSource, extract_pdf
from pipelines.config import VlmSection
from tests.pdfs import WIDTH, garbled_paper, scanned_pdf, shifted, two_column_paper

API_KEY = "sk-test-not-a-real-key-0123456789"
PAGE_LINES = [["First scanned page."], ["Second scanned page."]]
DPI = 72  # 612 x 792 pt -> 612 x 792 px: small images, fast tests
UPSIDE_DOWN = "---\nprimary_language: en\nis_rotation_valid: false\nrotation_correction: 90\nis_table: false\n---\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


class VisionHandler(BaseHTTPRequestHandler):
    server: "VisionServer"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
        fault = self.server.faults.popleft() if self.server.faults else None
        if fault == "hang":
            time.sleep(self.server.hang_s)
        if fault in ("500", "429", "400"):
            self.answer(int(fault), b'{"error": "injected"}', {"Retry-After": "0"} if fault == "429" else {})
        elif fault == "garbage":
            self.answer(200, b"<html>upstream proxy error</html>")
        elif fault == "missing":
            self.answer(200, b'{"id": "x", "object": "chat.completion"}')
        else:
            self.answer_page(body, fault)

    def answer_page(self, body: dict, fault: str | None) -> None:
        parts = body["messages"][0]["content"]
        images = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        prefix = "data:image/png;base64,"
        if self.path != "/v1/chat/completions" or len(images) != 1 or not images[0].startswith(prefix):
            self.answer(400, b'{"error": "expected one PNG image_url part"}')
            return
        width, height = png_size(base64.b64decode(images[0][len(prefix):]))
        front_matter = UPSIDE_DOWN if fault == "upside_down" else self.server.front_matter
        text = front_matter + f"A page image of {width} by {height} pixels.\n\nIt reads clearly."
        finish = "length" if fault == "length" else "stop"
        answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]}
        self.answer(200, json.dumps(answer).encode())

    def answer(self, status: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class VisionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), VisionHandler)
        self.requests: list[dict] = []
        self.faults: deque[str] = deque()
        self.hang_s = 1.0
        self.front_matter = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:  # a client timing out closes early
        pass


@pytest.fixture
def vision():
    with VisionServer() as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield server
        server.shutdown()
        thread.join()


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("OCR_TEST_KEY", API_KEY)
    return "OCR_TEST_KEY"


def vlm_config(server: VisionServer, api_key_env: str | None = None, **vlm) -> OcrConfig:
    settings = {"max_retries": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0} | vlm
    vlm_section = VlmConfig(base_url=server.base_url, model="olmocr-test", api_key_env=api_key_env, **settings)
    return OcrConfig(engine="vlm", dpi=DPI, vlm=vlm_section)


def read_pdf(data: bytes, config: OcrConfig, name: str = "scan.pdf", per_page: bool = False):
    with open_ocr(config) as engine:
        return extract_pdf(data, name, per_page=per_page, ocr=engine)


def test_vlm_reads_scanned_pages_and_sends_the_key(vision, api_key):
    [part] = read_pdf(scanned_pdf(PAGE_LINES), vlm_config(vision, api_key))
    page_text = f"A page image of {WIDTH} by 792 pixels.\n\nIt reads clearly."
    assert part.text == f"{page_text}\n\n{page_text}"
    assert part.ocr_pages == (1, 2) and part.metadata()["source"] == "ocr" and part.error_reason is None
    assert len(vision.requests) == 2
    request = vision.requests[0]
    assert request["authorization"] == f"Bearer {API_KEY}" and request["body"]["model"] == "olmocr-test"
    assert request["body"]["messages"][0]["content"][0]["type"] == "text"


def test_olmocr_front_matter_is_stripped(vision):
    vision.front_matter = "---\nprimary_language: en\nis_rotation_valid: True\nrotation_correction: 0\n---\n"
    [part] = read_pdf(scanned_pdf(PAGE_LINES[:1]), vlm_config(vision))
    assert part.text.startswith("A page image of") and "primary_language" not in part.text


def test_an_answer_cut_short_is_asked_again_at_the_next_temperature(vision):
    vision.faults.extend(["length", "length"])
    [part] = read_pdf(scanned_pdf(PAGE_LINES[:1]), vlm_config(vision, temperatures=(0.1, 0.5)))
    assert part.error_reason is None and part.text.startswith("A page image of")
    assert [request["body"]["temperature"] for request in vision.requests] == [0.1, 0.5, 0.5]


def test_a_page_the_model_says_is_turned_is_sent_again_turned_back(vision):
    vision.faults.append("upside_down")
    [part] = read_pdf(scanned_pdf(PAGE_LINES[:1]), vlm_config(vision, longest_side_px=400))
    assert part.text == "A page image of 400 by 310 pixels.\n\nIt reads clearly."  # the second, turned 90 degrees
    assert len(vision.requests) == 2


def test_the_olmocr_preset_is_olmocrs_own_settings_and_keys_given_win():
    section = VlmSection(base_url="http://127.0.0.1:1/v1", model="allenai/olmOCR-2-7B-1025", preset="olmocr", max_tokens=6000)
    assert section.prompt == OLMOCR_PROMPT and section.longest_side_px == 1288 and section.max_tokens == 6000
    assert section.temperatures == [0.1, 0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 1.0] and section.max_retries == 7


def test_pages_with_a_text_layer_are_never_sent(vision):
    [part] = read_pdf(two_column_paper(n_pages=1), vlm_config(vision))
    assert part.ocr_pages == () and vision.requests == []


def test_retries_500_429_garbage_and_missing_fields_then_succeeds(vision):
    vision.faults.extend(["500", "429", "garbage"])
    [part] = read_pdf(scanned_pdf(PAGE_LINES[:1]), vlm_config(vision))
    assert part.error_reason is None and part.text.startswith("A page image of")
    assert len(vision.requests) == 4
    vision.faults.extend(["missing"])
    [part] = read_pdf(scanned_pdf(PAGE_LINES[:1]), vlm_config(vision))
    assert part.error_reason is None and len(vision.requests) == 6


def test_a_timeout_is_retried(vision):
    vision.faults.append("hang")
    [part] = read_pdf(scanned_pdf(PAGE_LINES[:1]), vlm_config(vision, timeout_s=0.3))
    assert part.error_reason is None and len(vision.requests) == 2


def test_a_page_whose_ocr_fails_is_left_out_and_the_rest_kept_without_leaking_the_key(vision, api_key, capfd):
    vision.faults.extend(["500"] * 4)
    data = scanned_pdf(PAGE_LINES[:1], text_pages={1: ["A first page with a real text layer, long enough to keep."]})
    [part] = read_pdf(data, vlm_config(vision, api_key), name="books/scan.pdf")
    assert part.error_reason is None and part.text.startswith("A first page with a real text layer")
    assert part.failed_pages == (2,) and part.metadata()["failed_pages"] == [2]
    assert part.page_errors == "books/scan.pdf: page 2: OCR failed after 4 attempt(s): http_500"
    assert len(vision.requests) == 4
    assert API_KEY not in capfd.readouterr().err + part.page_errors


def test_a_garbled_text_layer_is_read_by_ocr_and_only_that_page(vision):
    [part] = read_pdf(garbled_paper(n_pages=2, garbled=(2,)), vlm_config(vision))
    assert part.garbled_pages == (2,) and part.ocr_pages == (2,) and len(vision.requests) == 1
    assert part.text.startswith("Line 1 of page 1 tells how the river floods")
    assert "A page image of" in part.text and shifted("the river floods") not in part.text


def test_a_poster_sized_page_is_rendered_within_the_pixel_cap(vision):
    doc = pymupdf.open()
    source = pymupdf.open()
    source.new_page(width=200, height=200).insert_text((20, 100), "Poster", fontsize=40)
    poster = doc.new_page(width=3000, height=3000)  # 12,500 px a side at 300 dpi: 156 megapixels
    poster.insert_image(poster.rect, pixmap=source[0].get_pixmap(dpi=72))
    [part] = read_pdf(doc.tobytes(), dataclasses.replace(vlm_config(vision), dpi=300, max_pixels=4_000_000), name="poster.pdf")
    width, height = map(int, re.search(r"A page image of (\d+) by (\d+) pixels", part.text).groups())
    assert width * height <= 4_000_000 and width >= 1900  # 48 dpi: as large as the cap allows
    assert part.ocr_downscaled_pages == (1,) and part.metadata()["ocr_downscaled_pages"] == [1]


def test_a_client_error_is_not_retried_and_only_its_page_fails(vision):
    vision.faults.append("400")
    parts = read_pdf(scanned_pdf(PAGE_LINES), vlm_config(vision), per_page=True)
    assert [p.error_reason for p in parts] == ["ocr_failed", None]
    assert parts[0].error_detail == "scan.pdf: page 1: OCR failed after 1 attempt(s): http_400"
    assert len(vision.requests) == 2


def test_pdf_source_marks_the_document_for_the_ledger(vision, tmp_path):
    vision.faults.extend(["429"] * 4)
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf(PAGE_LINES[:1]))
    [doc] = PdfSource([str(tmp_path / "scan.pdf")], ocr=vlm_config(vision)).run(None, 0, 1)
    assert marked(doc).label == "pdf/ocr_failed"
    assert marked(doc).detail.startswith(f"{tmp_path / 'scan.pdf'}: page 1: ")


def test_missing_api_key_fails_before_any_page(vision, monkeypatch):
    monkeypatch.delenv("OCR_UNSET_KEY", raising=False)
    with pytest.raises(OcrUnavailableError, match="OCR_UNSET_KEY is unset or empty"):
        open_ocr(vlm_config(vision, "OCR_UNSET_KEY"))


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="ocr.engine"):
        OcrConfig(engine="abbyy")
    with pytest.raises(ValueError, match="ocr.vlm"):
        OcrConfig(engine="vlm")
    with pytest.raises(ValueError, match="ocr.languages"):
        OcrConfig(languages=["eng; rm -rf"])
    assert OcrConfig(languages=["eng", "deu"]).languages == ("eng", "deu")
    assert open_ocr(OcrConfig(engine="off")) is None and open_ocr(None) is None


def test_missing_tesseract_says_how_to_install_it(monkeypatch):
    def absent(tessdata=None):
        raise RuntimeError("No tessdata specified and Tesseract is not installed")

    monkeypatch.setattr(pymupdf, "get_tessdata", absent)
    ocr_module.tessdata_folder.cache_clear()
    try:
        with pytest.raises(OcrUnavailableError, match=r"apt-get install tesseract-ocr tesseract-ocr-eng"):
            open_ocr(OcrConfig(engine="tesseract"))
    finally:
        ocr_module.tessdata_folder.cache_clear()


def test_missing_language_data_names_the_package(monkeypatch, tmp_path):
    (tmp_path / "eng.traineddata").write_bytes(b"")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    ocr_module.tessdata_folder.cache_clear()
    try:
        assert check_tesseract(("eng",)) == str(tmp_path)
        with pytest.raises(OcrUnavailableError, match=r"'chi_sim' .*tesseract-ocr-chi-sim"):
            check_tesseract(("eng", "chi_sim"))
    finally:
        ocr_module.tessdata_folder.cache_clear()
