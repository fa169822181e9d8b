"""Peak memory of one CSV export (/staff/export.csv), in a fresh process so nothing earlier hides it.

    python -m bench.export_memory DATABASE_URL

prints JSON: the process's peak resident memory (VmHWM) after the export, how far it rose during the
export alone (the peak is reset through /proc/self/clear_refs just before), the bytes of CSV and how
many chunks the response came in. The staff member signs in through the real /login form first.
"""

from __future__ import annotations

import json
import sys
import tempfile

from bench import national
from bench.common import sign_in
from bench.photo_memory import _peak_kib, _reset_peak


def main() -> None:
    from app import create_app

    with tempfile.TemporaryDirectory(prefix="skin-clinic-export-") as uploads:
        app = create_app("development", {"SQLALCHEMY_DATABASE_URI": sys.argv[1], "UPLOAD_DIR": uploads})
        client = app.test_client()
        sign_in(client, national.SIGN_IN["staff"], national.PASSWORD)
        client.get("/staff/export.csv").close()  # imports, templates and the first query plans
        before = _reset_peak()
        response = client.get("/staff/export.csv", buffered=False)
        size = chunks = 0
        for chunk in response.response:
            size += len(chunk)
            chunks += 1
        response.close()
        if response.status_code != 200:
            raise SystemExit(f"/staff/export.csv answered {response.status_code}")
        peak = _peak_kib()
    print(json.dumps({"peak_kib": peak, "rise_kib": peak - before, "bytes": size, "chunks": chunks}))


if __name__ == "__main__":
    main()
