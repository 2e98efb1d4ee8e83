from django import template

register = template.Library()


@register.filter
def can(access, codename: str) -> bool:
    """``{% if account_access|can:"manage_agents" %}``: may the current user do this here?"""
    return bool(access) and access.has(codename)
