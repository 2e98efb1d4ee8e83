def current_account(request):
    access = getattr(request, "account_access", None)
    if access is None:
        return {}
    return {
        "current_account": access.account, "account_access": access, "can": access.can,
        "may_govern_agency": access.may_govern_agency,
    }
