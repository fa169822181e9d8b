"""The yardstick for throughput: a bare Flask "hello" app, served by gunicorn with the same settings as the clinic."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
