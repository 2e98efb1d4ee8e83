from django.urls import path

from . import views

app_name = "workspace"


def crud(kind):
    base = f"a/<uuid:account_id>/{kind.plural}/"
    item = f"{base}<uuid:pk>/"
    return [
        path(base, views.ScopedListView.as_view(kind=kind), name=f"{kind.key}-list"),
        path(f"{base}new/", views.ScopedCreateView.as_view(kind=kind), name=f"{kind.key}-create"),
        path(item, views.ScopedDetailView.as_view(kind=kind), name=f"{kind.key}-detail"),
        path(f"{item}edit/", views.ScopedUpdateView.as_view(kind=kind), name=f"{kind.key}-edit"),
        path(f"{item}delete/", views.ScopedDeleteView.as_view(kind=kind), name=f"{kind.key}-delete"),
    ]


urlpatterns = [*crud(views.AGENTS), *crud(views.CONTACTS), *crud(views.CONVERSATIONS)]
