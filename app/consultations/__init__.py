"""The rules of a consultation: one domain layer that the web doors (app/intake, app/queue,
app/staff), the CLI and the worker all call. Nothing here reads `flask.request` or `current_app`:
settings arrive as small typed policy objects (policies.py), and each action owns its transaction.
See docs/architecture.md for where each rule lives.
"""
