def policy_notice(request):
    """The banner of an account that will soon require a second factor the person has not set up
    (``security.middleware.AccountPolicyMiddleware`` leaves it on the request)."""
    requirement = getattr(request, "security_notice", None)
    if requirement is None:
        return {}
    access = getattr(request, "account_access", None)
    source = requirement.source
    if access is not None and source.pk == access.account.pk:
        who = "This account"
    elif access is not None and access.reaches(source):
        who = source.name
    else:
        who = "An account above this one"  # R6: never name an account the reader cannot reach
    return {"mfa_notice": {"who": who, "deadline": requirement.deadline}}
