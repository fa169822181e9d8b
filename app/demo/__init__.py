"""Demo data for trying the app locally (`flask demo seed`, run by `make run`); never in production.

What a run makes sure exists:

- four accounts with fixed demo passwords (an admin, a staff member, two dermatologists), printed at
  the end with the sign-in address (accounts.py);
- the hand-written examples (cases.DEMO_CASES), one for each situation the queue shows: new, at risk
  and overdue requests, claimed ones, one waiting for the patient, one where the patient replied,
  answers on time and late, closed ones. Each is played (stories.py) through the real actions, at
  the past moments of its story: submitted with one or two generated photos of skin (photos.py), then
  claimed, asked or answered, replied to and resolved, so its photos, messages, response clocks and
  audit rows are exactly what the real flow leaves;
- with `--requests N`, further requests up to N in all: a made-up history going back in time
  (history.py, also the benchmarks' loader, bench/national.py), 274 requests a day, written with
  COPY on PostgreSQL and batched INSERTs on SQLite, so 1,000,000 (ten years) take minutes. Their
  clocks follow the clinic's own due times, their statuses, messages and audit rows what the actions
  leave; they have no photos and no emails, and their first private link is a demo link (store.py).

The emails the real actions queue for demo requests are dropped in the same transaction, so nobody
(a demo patient, a dermatologist, STAFF_ALERT_EMAILS) is ever emailed about demo data.

Idempotent: every demo request carries a submission key "demo-000001", "demo-000002", ... and a run
creates only those missing (a larger N adds older history; the history is one transaction, so a
failed run leaves none of it); existing accounts are left as they are. `--reset` first deletes the demo
requests (rows and photo files) and restores the demo accounts' passwords.

Refused under APP_CONFIG=production (app/cli/demo.py): demo passwords are public, and the demo
patients' private links are derived from SECRET_KEY (store.py), so that the summary (summary.py) can
print them again on every run.
"""
