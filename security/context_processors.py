def policy_notice(request):
    """Banners of the account in the URL: one that will soon require a second factor the person has not set up
    (``security.middleware.AccountPolicyMiddleware`` leaves it on the request), and platform support access
    (to the staff member who holds it, and to the account's people)."""
    access = getattr(request, "account_access", None)
    ctx = {}
    if access is not None and access.is_support:
        ctx["support_notice"] = {"mine": True, "level": access.support.get_level_display(),
                                 "until": access.support.expires_at, "reason": access.support.reason}
    elif access is not None:
        policy = getattr(request, "security_policy", None)
        window = policy.support[0] if policy is not None and policy.support else None
        if window is not None:
            ctx["support_notice"] = {"mine": False, "level": window.level.label, "until": window.until}
    requirement = getattr(request, "security_notice", None)
    if requirement is None:
        return ctx
    source = requirement.source
    if access is not None and source.pk == access.account.pk:
        who = "This account"
    elif access is not None and access.is_agency and source.pk == access.effective_membership.agency_account_id:
        who = f"{source.name}, your agency,"  # its policy follows its people into its clients' accounts
    elif access is not None and access.reaches(source):
        who = source.name
    else:
        who = "An account above this one"  # R6: never name an account the reader cannot reach
    return {**ctx, "mfa_notice": {"who": who, "deadline": requirement.deadline}}
