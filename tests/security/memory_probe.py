"""Memory of cleaning photos, measured in a fresh process so nothing earlier hides it.

    python -m tests.security.memory_probe clean FILE
    python -m tests.security.memory_probe post FILE COPIES UPLOAD_DIR
    python -m tests.security.memory_probe together FILE THREADS

prints JSON: `peak_kib`, how far the process's peak resident memory (Linux: VmHWM, reset first
through /proc/self/clear_refs) rose during the step above its size just before; `kept_kib`, how much
bigger the process still is afterwards (what a gunicorn worker would keep); and what came of it.
Pillow's pixel buffers live outside Python's allocator, so tracemalloc would not see them.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> int:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return _status_kib("VmRSS")


def clean(path: str) -> dict:
    import config
    from app.photos import PhotoLimits, PhotoRejected, clean_photo

    data = Path(path).read_bytes()
    limits = PhotoLimits.from_config(config.load("testing"))
    _warm_up(limits)
    before = _reset_peak()
    try:
        clean_photo(data, limits)
        outcome = "cleaned"
    except PhotoRejected as refused:
        outcome = f"refused: {refused.reason}"
    return {"peak_kib": _status_kib("VmHWM") - before, "outcome": outcome}


def together(path: str, threads: int) -> dict:
    """`threads` threads of one process cleaning the same file at the same moment (a gunicorn worker's
    threads each with a post): the peak, and how each ended."""
    import threading

    import config
    from app.photos import PhotoLimits, PhotoRejected, clean_photo

    data = Path(path).read_bytes()
    limits = PhotoLimits.from_config(config.load("testing"))
    _warm_up(limits)
    start = threading.Barrier(threads)
    outcomes: list[str] = []

    def clean_one() -> None:
        start.wait()
        try:
            clean_photo(data, limits)
            outcomes.append("cleaned")
        except PhotoRejected as refused:
            outcomes.append(f"refused: {refused.reason}")

    workers = [threading.Thread(target=clean_one) for _ in range(threads)]
    before = _reset_peak()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"peak_kib": _status_kib("VmHWM") - before, "outcomes": outcomes}


def post(path: str, copies: int, upload_dir: str) -> dict:
    from app import create_app
    from app.extensions import db
    from tests.factories import intake_answers, open_consultation_form

    data = Path(path).read_bytes()
    app = create_app("testing", {"UPLOAD_DIR": upload_dir})
    with app.app_context():
        db.create_all()
        client = app.test_client()
        _, key = open_consultation_form(client)
        form = intake_answers()
        form["submission_key"] = key
        form["photos"] = [(io.BytesIO(data), f"photo-{n}.png") for n in range(copies)]
        _warm_up_post(app)
        before = _reset_peak()
        response = client.post("/consultation/new", data=form, content_type="multipart/form-data")
        after = _status_kib("VmRSS")
        return {
            "peak_kib": _status_kib("VmHWM") - before,
            "kept_kib": after - before,
            "status": response.status_code,
            "text": response.get_data(as_text=True),
        }


def _warm_up(limits) -> None:
    """Load the decoders and encoders once on a tiny image, so their import is not counted."""
    from PIL import Image

    from app.photos import clean_photo

    for fmt in ("JPEG", "PNG"):
        tiny = io.BytesIO()
        Image.new("RGBA" if fmt == "PNG" else "RGB", (8, 8)).save(tiny, fmt)
        clean_photo(tiny.getvalue(), limits)


def _warm_up_post(app) -> None:
    from app.photos import PhotoLimits

    _warm_up(PhotoLimits.from_config(app.config))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "clean":
        result = clean(sys.argv[2])
    elif mode == "together":
        result = together(sys.argv[2], int(sys.argv[3]))
    else:
        result = post(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    print(json.dumps(result))
