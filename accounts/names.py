"""Names as people see them (rule R9): NFKC, no invisible or control characters, single spaces.

``normalize_name`` is what a name is stored as; ``name_key`` is what two names are compared in
for duplicates. Refusing a name that is empty after normalising is the caller's rule.
"""

import bisect
import unicodedata

# Default_Ignorable_Code_Point, from the Unicode Character Database, DerivedCoreProperties.txt
# (https://www.unicode.org/Public/UCD/latest/ucd/DerivedCoreProperties.txt, "Derived Property:
# Default_Ignorable_Code_Point", "# Total code points: 4174"; the same set since Unicode 14.0, which
# added U+180F, through 15.1). Derived there as Other_Default_Ignorable_Code_Point + Cf +
# Variation_Selector - White_Space - FFF9..FFFB - Prepended_Concatenation_Mark. Python's unicodedata
# does not expose the property, hence the table. Inclusive ranges:
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),    # SOFT HYPHEN
    (0x034F, 0x034F),    # COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),    # ARABIC LETTER MARK
    (0x115F, 0x1160),    # HANGUL CHOSEONG FILLER..HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),    # KHMER VOWEL INHERENT AQ..KHMER VOWEL INHERENT AA
    (0x180B, 0x180F),    # MONGOLIAN FREE VARIATION SELECTOR ONE..THREE, VOWEL SEPARATOR, FVS FOUR
    (0x200B, 0x200F),    # ZERO WIDTH SPACE, ZWNJ, ZWJ, LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),    # LEFT-TO-RIGHT EMBEDDING..RIGHT-TO-LEFT OVERRIDE
    (0x2060, 0x206F),    # WORD JOINER..INVISIBLE PLUS, <reserved-2065>, the isolates, ..NOMINAL DIGIT SHAPES
    (0x3164, 0x3164),    # HANGUL FILLER
    (0xFE00, 0xFE0F),    # VARIATION SELECTOR-1..VARIATION SELECTOR-16
    (0xFEFF, 0xFEFF),    # ZERO WIDTH NO-BREAK SPACE (byte order mark)
    (0xFFA0, 0xFFA0),    # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),    # <reserved-FFF0>..<reserved-FFF8>
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT LETTER OVERLAP..SHORTHAND FORMAT UP STEP
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM..MUSICAL SYMBOL END PHRASE
    (0xE0000, 0xE0FFF),  # LANGUAGE TAG, the tag characters, VARIATION SELECTOR-17..256, reserved
)
_STARTS = [first for first, _ in DEFAULT_IGNORABLE]

# Bidi_Control (PropList.txt): ALM, LRM, RLM, LRE..RLO, LRI..PDI. All default-ignorable too; listed
# on their own because rule R9 names them.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# White_Space (PropList.txt): the separators Zs, Zl, Zp and these controls. They become one space.
_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r\x85")

# Control (Cc), format (Cf, including the visible Prepended_Concatenation_Marks such as U+0600) and
# lone surrogates (Cs, which no database or UTF-8 can store).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def is_default_ignorable(char: str) -> bool:
    cp = ord(char)
    i = bisect.bisect_right(_STARTS, cp) - 1
    return i >= 0 and cp <= DEFAULT_IGNORABLE[i][1]


def is_whitespace(char: str) -> bool:
    """Unicode White_Space (not Python's str.isspace, which adds U+001C..U+001F)."""
    return char in _WHITESPACE_CONTROLS or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def is_invisible(char: str) -> bool:
    """A character R9 removes from names and refuses in emails: default-ignorable, a bidi control,
    or a control or format character. White space is not one of them (it is collapsed instead)."""
    if is_whitespace(char):
        return False
    return (char in BIDI_CONTROLS or is_default_ignorable(char)
            or unicodedata.category(char) in _REMOVED_CATEGORIES)


def first_invisible(value: str) -> str | None:
    return next((c for c in value if is_invisible(c)), None)


def describe(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE``, for messages."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')}"


def _visible(text: str) -> str:
    return "".join(" " if is_whitespace(c) else c for c in text if not is_invisible(c))


def normalize_name(value: str) -> str:
    """NFKC, without default-ignorable, bidi control or other control characters, every run of
    white space one ASCII space, stripped. "Ａｃｍｅ\u200b  Corp" → "Acme Corp"; may be "".

    Invisible characters go before NFKC as well as after it, so that one removed from between two
    combining marks cannot leave them unordered (the result would not be NFKC, and a second call
    would change it). Emoji stay, but a ZWJ sequence falls apart into its emoji (U+200D is
    default-ignorable) and a variation selector goes (U+FE0F)."""
    text = _visible(unicodedata.normalize("NFKC", _visible(value or "")))
    return " ".join(text.split())


def name_key(value: str) -> str:
    """The form two names are compared in for duplicates: normalised and case-folded
    ("STRASSE" and "straße" are the same name). Folding can leave a string that is not NFKC
    (U+01F0 ǰ folds to j + U+030C), so it is normalised once more, as in Unicode's
    compatibility caseless matching (The Unicode Standard, 3.13, D146)."""
    return unicodedata.normalize("NFKC", normalize_name(value).casefold())
