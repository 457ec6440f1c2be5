from typing import Any

from flask import Flask, request, url_for

app = Flask(__name__)


@app.get("/")
def index() -> dict[str, Any]:
    return {"framework": "flask", "url": url_for("index"), "root": request.script_root}


@app.post("/echo")
def echo() -> dict[str, Any]:
    return {"size": len(request.get_data())}
