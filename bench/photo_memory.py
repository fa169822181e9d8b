"""Peak memory of one upload, measured in a fresh process so nothing earlier hides it.

    python -m bench.photo_memory pipeline|decode FILE

prints JSON: how far the process's peak resident memory rose above its size just before the step
(Linux: VmHWM, reset first through /proc/self/clear_refs; ru_maxrss is no use here, because a process
started from a big parent inherits the parent's peak), which counts Pillow's pixel buffers; and
tracemalloc's peak, which sees only Python's own allocations (bytes such as the re-encoded JPEG).
"""

from __future__ import annotations

import io
import json
import resource
import sys
import tracemalloc

from PIL import Image


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> int:
    """Start the peak afresh at the current size; returns that size in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass
    return _status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kib() -> int:
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as stream:
        data = stream.read()
    import config
    from app.photos import PhotoLimits, clean_photo

    limits = PhotoLimits.from_config(config.load("development"))
    # Load the decoders and encoders once on a tiny image, so their import is not counted.
    tiny = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiny, "JPEG")
    clean_photo(tiny.getvalue(), limits)
    before = _reset_peak()
    tracemalloc.start()
    if mode == "pipeline":
        result = clean_photo(data, limits)
    else:
        result = Image.open(io.BytesIO(data))
        result.load()
    traced_peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"rss_growth_kib": _peak_kib() - before, "traced_peak_bytes": traced_peak}))
    del result


if __name__ == "__main__":
    main()
