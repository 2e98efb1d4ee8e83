"""``{% extends %}`` keeping the root template's blocks (accounts/templatetags/fast_extends.py, issue 14): pages
render exactly as with Django's own tag, through any depth of inheritance, ``block.super``, a parent named by a
variable or given as a template, with and without the cached loader."""

import pytest
from django.template import Context, Engine, engines
from django.template.loader_tags import ExtendsNode

from accounts.templatetags.fast_extends import FastExtendsNode

TEMPLATES = {
    "root.html": "<h1>{% block title %}Root{% endblock %}</h1>{% block body %}root body{% endblock %}"
                 "{% block foot %}[{{ who }}]{% endblock %}",
    "other_root.html": "{% block title %}Other{% endblock %}|{% block body %}{% endblock %}",
    "middle.html": "{% extends 'root.html' %}{% block title %}{{ block.super }} › Middle{% endblock %}"
                   "{% block body %}<main>{% block inner %}middle inner{% endblock %}</main>{% endblock %}",
    "leaf.html": "{% extends 'middle.html' %}{% block inner %}{{ block.super }} + leaf {{ who }}{% endblock %}",
    "by_variable.html": "{% extends parent %}{% block body %}chosen {{ who }}{% endblock %}",
    "direct.html": "{% extends 'root.html' %}{% block foot %}{{ block.super }} and more{% endblock %}",
    "loop.html": "{% extends 'root.html' %}{% block body %}{% for i in items %}{% include 'item.html' %}"
                 "{% endfor %}{% endblock %}",
    "item.html": "<i>{{ i }}</i>",
}


def engine(fast: bool, cached: bool) -> Engine:
    loader = ("django.template.loaders.locmem.Loader", TEMPLATES)
    return Engine(loaders=[("django.template.loaders.cached.Loader", [loader])] if cached else [loader],
                  builtins=["accounts.templatetags.fast_extends"] if fast else [])


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("name, context", [
    ("leaf.html", {"who": "Ann"}), ("middle.html", {}), ("direct.html", {"who": "Bo"}),
    ("by_variable.html", {"parent": "root.html", "who": "Cy"}),
    ("by_variable.html", {"parent": "other_root.html", "who": "Di"}),
    ("by_variable.html", {"parent": "middle.html", "who": "Ed"}),
    ("loop.html", {"items": [1, 2, 3], "who": "Fay"}),
])
def test_renders_as_djangos_extends(cached, name, context):
    plain, fast = engine(False, cached), engine(True, cached)
    expected = plain.get_template(name).render(Context(context))
    template = fast.get_template(name)
    for _ in range(3):  # the second and later renders use the blocks kept on the compiled parent
        assert template.render(Context(context)) == expected
    # other contexts after the first, through the same compiled templates
    assert fast.get_template(name).render(Context({**context, "who": "Zed"})) == plain.get_template(name).render(
        Context({**context, "who": "Zed"}))


def test_a_parent_given_as_a_template():
    plain, fast = engine(False, True), engine(True, True)
    for parent in ("root.html", "middle.html"):
        expected = plain.get_template("by_variable.html").render(
            Context({"parent": plain.get_template(parent), "who": "Gil"}))
        for _ in range(2):
            assert fast.get_template("by_variable.html").render(
                Context({"parent": fast.get_template(parent), "who": "Gil"})) == expected


def test_installed_for_the_projects_templates():
    template = engines["django"].engine.get_template("accounts/dashboard.html")
    nodes = template.nodelist.get_nodes_by_type(ExtendsNode)
    assert nodes and all(type(node) is FastExtendsNode for node in nodes)
