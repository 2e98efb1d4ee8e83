"""accounts.names: what a name is stored as and compared in (rule R9). No database needed."""

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from accounts.names import (
    BIDI_CONTROLS,
    DEFAULT_IGNORABLE,
    first_invisible,
    is_default_ignorable,
    is_invisible,
    name_key,
    normalize_name,
)


class TestNormalizeName:
    @pytest.mark.parametrize("value", ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", " \u200b \u00ad\t\n", "\u202e\u202c",
                                       "\u3164\u115f\uffa0", "\U000e0041\U000e007f", ""])
    def test_a_name_of_only_invisible_characters_becomes_empty(self, value):
        assert normalize_name(value) == ""

    def test_zero_width_space_does_not_make_a_different_name(self):
        assert normalize_name("Acme Corp\u200b - Sales") == "Acme Corp - Sales"
        assert name_key("Acme Corp\u200b - Sales") == name_key("Acme Corp - Sales")
        assert name_key("\ufeffAcme\u2060 Corp - Sales\u00ad") == name_key("acme corp - sales")

    def test_bidi_overrides_and_isolates_are_removed(self):
        assert normalize_name("\u202eevil.exe\u202c") == "evil.exe"
        assert normalize_name("Acme \u2067Sales\u2069 \u200fTeam\u200e") == "Acme Sales Team"
        assert normalize_name("\u061cشركة") == "شركة"

    def test_controls_are_removed_and_white_space_collapsed(self):
        assert normalize_name("Acme\x00Corp\x07") == "AcmeCorp"
        assert normalize_name("  Acme\t\tCorp \n- \u00a0Sales\u3000 ") == "Acme Corp - Sales"
        assert normalize_name("Acme\u2028Corp\u2029") == "Acme Corp"

    def test_fullwidth_and_compatibility_letters_are_nfkc_folded(self):
        assert normalize_name("Ａｃｍｅ　Ｃｏｒｐ") == "Acme Corp"
        assert normalize_name("\ufb01nance Ⅳ") == "finance IV"
        assert name_key("ＡＣＭＥ") == name_key("acme")

    def test_combining_sequences_compose(self):
        assert normalize_name("Cafe\u0301") == "Café"
        assert name_key("CAFE\u0301") == name_key("café")

    def test_german_sharp_s_folds_to_ss(self):
        assert name_key("STRASSE") == name_key("straße")
        assert normalize_name("straße") == "straße"  # the name itself keeps what was typed

    def test_emoji_are_kept(self):
        assert normalize_name("🚀 Rocket Co 🎉") == "🚀 Rocket Co 🎉"
        assert name_key("🚀 ROCKET") == name_key("🚀 rocket")

    def test_emoji_joiners_and_variation_selectors_are_default_ignorable(self):
        # The documented cost of removing every default-ignorable character: U+200D ZWJ and U+FE0F go.
        assert normalize_name("👩\u200d💻 Devs") == "👩💻 Devs"
        assert normalize_name("\u2764\ufe0f Hearts") == "\u2764 Hearts"

    @pytest.mark.parametrize("value", ["Acme Corp", "Acme Corp - Sales Team", "O'Brien & Sons, Ltd.", "Zürich AG",
                                       "株式会社トヨタ", "Ελληνικά", "شركة الأمل", "Blue Harbor Dental (EMEA)",
                                       "R&D #2 / 50% off"])
    def test_ordinary_names_are_unchanged(self, value):
        assert normalize_name(value) == value

    def test_name_key_folds_case(self):
        assert name_key("Acme CORP") == name_key("acme corp") == "acme corp"
        assert name_key("\u01f0") == name_key("J\u030c")


class TestCharacterTable:
    def test_the_table_has_the_4174_code_points_of_derived_core_properties(self):
        assert sum(last - first + 1 for first, last in DEFAULT_IGNORABLE) == 4174
        assert all(a[1] < b[0] for a, b in zip(DEFAULT_IGNORABLE, DEFAULT_IGNORABLE[1:], strict=False))

    def test_the_table_agrees_with_its_derivation_from_this_pythons_unicode_data(self):
        """Cf + Variation_Selector - White_Space - FFF9..FFFB - Prepended_Concatenation_Mark is in it."""
        prepended = {*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD}
        egyptian_format = set(range(0x13430, 0x13440))  # Cf, not ignorable: visible hieroglyph controls
        for cp in range(0x110000):
            char = chr(cp)
            if unicodedata.category(char) == "Cf" and cp not in prepended | egyptian_format \
                    and not 0xFFF9 <= cp <= 0xFFFB:
                assert is_default_ignorable(char), hex(cp)
        for cp in [*range(0x180B, 0x180E), 0x180F, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]:
            assert is_default_ignorable(chr(cp)), hex(cp)
        assert not any(is_default_ignorable(c) for c in "aZ09 -_.\u00a0\u0600\ufff9\U00013430")

    def test_bidi_controls_and_controls_are_invisible_white_space_is_not(self):
        assert all(is_invisible(c) for c in BIDI_CONTROLS)
        assert all(is_invisible(c) for c in "\x00\x07\x1b\x1c\x7f\x9f\u0600\ufff9")
        assert not any(is_invisible(c) for c in " \t\n\u00a0\u2028\u3000a😀")
        assert first_invisible("abc\u200bd\u202e") == "\u200b"


INTERESTING = ("\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202e\u2066\u2069\u061c\u180e\u3164\ufe0f\U000e0041"
               "\x00\x07\x1c\x7f\x85\t\n \u00a0\u2000\u3000\u2028"
               "\u0301\u0316\u0345\u0308eaAJ\u01f0\u1fd3\u00a8\u1100\u1161\u11a8\ufb01Ａß\u0130ﾞ\uff9e\u2764😀")
TEXT = st.text(alphabet=st.characters() | st.sampled_from(INTERESTING), max_size=40)


@settings(max_examples=500, deadline=None)
@given(TEXT)
@example("e\u200b\u0301")
@example("a\u0301\u200b\u0316")
@example(" \u00a8 x")
@example("\u1100\u200b\u1161")
def test_normalize_name_is_idempotent_and_leaves_nothing_invisible(value):
    name = normalize_name(value)
    assert normalize_name(name) == name
    assert not any(is_invisible(c) or is_default_ignorable(c) or c in BIDI_CONTROLS for c in name)
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name)
    assert unicodedata.is_normalized("NFKC", name)
    assert name == name.strip() and "  " not in name
    assert all(c == " " or not c.isspace() for c in name)
    assert name_key(name) == name_key(value)
