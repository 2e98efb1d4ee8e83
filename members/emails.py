"""Email addresses as the project accepts them (rule R9): at most 254 characters, nothing invisible,
Django's syntax check, and a domain that is a valid IDNA 2008 name.

``clean_email`` returns the address as it is stored: stripped, NFC, lower-cased (as
``UserManager.normalize`` does), the domain kept in Unicode as typed ("bücher.example", not its
"xn--" form). Every refusal is a ``ValidationError`` whose message says what to change.
"""

import re
import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from accounts.names import describe, first_invisible

from .models import UserManager

MAX_LENGTH = 254  # RFC 5321's 256-octet path less its angle brackets (RFC 3696 erratum 1690); Django's EmailField
MAX_LOCAL_LENGTH = 64  # RFC 5321, 4.5.3.1.1
MAX_DOMAIN_LENGTH = 253  # in its ASCII ("xn--") form: RFC 1035's 255 octets less the length octets
MAX_LABEL_LENGTH = 63  # RFC 1035, 2.3.4

INVALID = "Enter a valid email address, like name@company.com."


class UnicodeEmailValidator(EmailValidator):
    """Django's EmailValidator, its dot-atom local part widened to UTF-8 characters as RFC 6531
    allows ("über@bücher.example"); Django's own takes ASCII there only. White space and invisible
    characters are refused before this runs."""

    user_regex = re.compile(
        r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z\u0080-\U0010FFFF]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z\u0080-\U0010FFFF]+)*\Z"
        r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"\Z)',
        re.IGNORECASE,
    )


validate_syntax = UnicodeEmailValidator(message=INVALID)

_IDNA_REASONS = {
    "label_too_long": f"each part between dots can be at most {MAX_LABEL_LENGTH} characters long, a non-ASCII "
                      "part counted in its \u201cxn--\u201d form",
    "domain_too_long": f"it can be at most {MAX_DOMAIN_LENGTH} characters long, each non-ASCII part counted in its "
                       "\u201cxn--\u201d form",
    "empty_label": "it has an empty part between two dots",
    "empty_domain": "it is empty",
    "hyphen_start_end": "a part between dots cannot start or end with a hyphen",
    "hyphen_3_4": "a part between dots cannot have hyphens as its 3rd and 4th characters unless it is a valid "
                  "\u201cxn--\u201d name",
    "leading_combiner": "a part between dots cannot start with a combining mark",
    "invalid_alabel": "its \u201cxn--\u201d part is not valid punycode",
    "non_canonical_alabel": "its \u201cxn--\u201d part is not valid punycode",
}


def _domain_problem(domain: str) -> str | None:
    """Why ``domain`` is not a valid IDNA 2008 host name (in words), or None."""
    try:
        ascii_domain = idna.encode(domain, uts46=False, strict=True)
    except idna.IDNAError as exc:
        code = getattr(exc, "code", None)
        if code in _IDNA_REASONS:
            return _IDNA_REASONS[code]
        codepoint = getattr(exc, "codepoint", None)
        if codepoint is not None and chr(codepoint) not in domain:  # found inside a decoded "xn--" label
            return _IDNA_REASONS["invalid_alabel"]
        if codepoint is not None:
            return f"domain names cannot use \u201c{chr(codepoint)}\u201d ({describe(chr(codepoint))}) there"
        return "it is not a valid internationalised domain name (IDNA 2008)"
    except UnicodeError:
        return "it is not a valid internationalised domain name (IDNA 2008)"
    if len(ascii_domain) > MAX_DOMAIN_LENGTH:  # idna checks both lengths too; its limits are its own
        return _IDNA_REASONS["domain_too_long"]
    if any(len(label) > MAX_LABEL_LENGTH for label in ascii_domain.split(b".")):
        return _IDNA_REASONS["label_too_long"]
    return None


def clean_email(value: str) -> str:
    """The address to store, or ValidationError with a message for the person who typed it."""
    email = (value or "").strip()
    if not email:
        raise ValidationError("Enter an email address.", code="required")
    hidden = first_invisible(email)
    if hidden is not None:
        raise ValidationError(
            f"The email address contains an invisible or control character ({describe(hidden)}). "
            "Type the address again rather than pasting it.", code="invisible")
    email = UserManager.normalize(unicodedata.normalize("NFC", email))
    if len(email) > MAX_LENGTH:
        raise ValidationError(f"An email address can be at most {MAX_LENGTH} characters long; this one has "
                              f"{len(email)}.", code="too_long")
    if "@" not in email:
        raise ValidationError(INVALID, code="invalid")
    local, domain = email.rsplit("@", 1)
    if not local or not domain:
        raise ValidationError(INVALID, code="invalid")
    if len(local) > MAX_LOCAL_LENGTH:
        raise ValidationError(f"The part before the @ can be at most {MAX_LOCAL_LENGTH} characters long; this one "
                              f"has {len(local)}.", code="too_long")
    if any(c.isspace() for c in email):
        raise ValidationError("An email address cannot contain spaces.", code="invalid")
    problem = _domain_problem(domain)  # first: its reasons are more precise than the syntax check's
    if problem:
        raise ValidationError(f"\u201c{domain[:80]}\u201d is not a valid email domain: {problem}.", code="domain")
    validate_syntax(email)
    return email
