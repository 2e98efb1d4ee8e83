def current_account(request):
    access = getattr(request, "account_access", None)
    if access is None:
        return {}
    return {
        "current_account": access.account, "account_access": access, "can": access.can,
        # The Owner always reaches agency access (agency settings can never lock them out of it).
        "may_govern_agency": access.is_owner or (access.has("manage_members") and not access.is_agency),
    }
