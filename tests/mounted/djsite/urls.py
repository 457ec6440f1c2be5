from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse


def hi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"framework": "django", "prefix": request.META["SCRIPT_NAME"], "url": reverse("hi")}
    )


urlpatterns = [path("hi/", hi, name="hi")]
