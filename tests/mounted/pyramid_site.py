from pyramid.config import Configurator
from pyramid.request import Request


def hi(request: Request) -> dict[str, str]:
    return {"framework": "pyramid", "prefix": request.script_name, "url": request.route_path("hi")}


with Configurator() as config:
    config.add_route("hi", "/hi")
    config.add_view(hi, route_name="hi", renderer="json")
    app = config.make_wsgi_app()
