"""The project's URLs plus the benchmarks' floor: a bare logged-in page rendering ``base.html``."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import include, path


@login_required
def bare(request):
    return render(request, "base.html")


urlpatterns = [path("bench/bare/", bare, name="bench-bare"), path("", include("config.urls"))]
