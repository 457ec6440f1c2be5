import bottle

app = bottle.Bottle()


@app.get("/hi", name="hi")
def hi() -> dict[str, str]:
    return {
        "framework": "bottle",
        "prefix": bottle.request.environ["SCRIPT_NAME"],
        "url": app.get_url("hi"),
    }
