"""The quality rules on crafted text: each passes at its threshold and fails just past it.

Ratios are built from integers so that "at the threshold" is exact (30 of 100 lines is 0.3).
Nothing here reads the shared corpus.
"""

from __future__ import annotations

import pickle
import random
from collections import Counter

import pytest

from gristmill.transforms.quality import rules as qr
from gristmill.transforms.quality.rules import (
    C4Params,
    GopherQualityParams,
    GopherRepetitionParams,
    LengthParams,
    QualityParams,
    TextStats,
)
from gristmill.transforms.quality.stage import evaluate

Q = GopherQualityParams()
R = GopherRepetitionParams()
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "fi", "zo", "ha"]


def prose(n_words: int, seed: int = 0, per_line: int = 12, stop=("the", "of", "and", "to")) -> str:
    """Varied text: no repeated 5-grams, a stop word every 7th word (English ones by default)."""
    rng = random.Random(seed)
    words = [
        rng.choice(stop) if i % 7 == 0 else "".join(rng.choices(SYLLABLES, k=rng.randint(1, 3)))
        for i in range(n_words)
    ]
    return "\n".join(" ".join(words[i : i + per_line]) + "." for i in range(0, n_words, per_line))


def unique_words(n: int, width: int = 4, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i:0{width - len(prefix)}d}" for i in range(n)]


def only(**thresholds) -> GopherRepetitionParams:
    """Repetition params with every n-gram threshold off except the given ones."""
    off = {f"top_{n}gram": None for n in (2, 3, 4)} | {f"dup_{n}gram": None for n in range(5, 11)}
    return GopherRepetitionParams(**(off | thresholds))


# ---- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii words\nand lines",
        "naïve café — “quoted” words…",
        "ideographic\u3000space and\xa0nbsp\x1cfile-sep\u2028line-sep\u2029end",
        "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and emoji 🙂🙂 here",
        "  leading and trailing  \n\n",
        "lone \ud800 surrogate",
        "",
    ],
)
def test_tokens_are_exactly_str_split(text):
    s = TextStats(text)
    assert [s.token(i) for i in range(s.n_tokens)] == text.split()
    assert list(s.lengths) == [len(t) for t in text.split()]


@pytest.mark.parametrize("char", ["a", "é", "𝔘"])  # 1-, 2- and 4-byte code point paths
def test_long_tokens_differing_late_are_different_words(char):
    # tokens share their first 20 code points; only the last one tells them apart
    heads = [char * 20 + tail for tail in "vwxyz"]
    text = " ".join(heads) + " " + " ".join(heads[:4] + [char * 20 + "q"])
    assert qr.dup_ngrams(TextStats(text), only(dup_5gram=0.0)) is None
    text = " ".join(heads) + " " + " ".join(heads)
    assert qr.dup_ngrams(TextStats(text), only(dup_5gram=0.0))[0] == "dup_5gram"


def test_crlf_reads_as_lf():
    assert TextStats("a...\r\nb\r\n\r\n- c").line_marks == TextStats("a...\nb\n\n- c").line_marks


# ---- length and Gopher quality -----------------------------------------------------------------


def test_length_bounds():
    p = LengthParams(min_chars=3, max_chars=10)
    assert qr.length("abc", p) is None and qr.length("a" * 10, p) is None
    assert qr.length("ab", p) == ("too_short", "2 chars < 3")
    assert qr.length("a" * 11, p) == ("too_long", "11 chars > 10")


def test_word_count_bounds():
    assert qr.word_count(TextStats(" ".join(unique_words(50))), Q) is None
    assert qr.word_count(TextStats(" ".join(unique_words(49))), Q) == ("too_few_words", "49 < 50")
    # a lone dash or bullet is punctuation, not a word
    assert qr.word_count(TextStats(" — ".join(unique_words(49))), Q)[0] == "too_few_words"
    p = GopherQualityParams(max_words=60)
    assert qr.word_count(TextStats(" ".join(unique_words(60))), p) is None
    assert qr.word_count(TextStats(" ".join(unique_words(61))), p) == ("too_many_words", "61 > 60")


def test_default_word_cap_keeps_long_novels():
    assert Q.max_words >= 1_000_000  # Gopher's 100,000 would drop most novels
    assert qr.word_count(TextStats("word " * 250_000), Q) is None


def test_mean_word_length_bounds():
    assert qr.mean_word_length(TextStats("abc " * 10), Q) is None
    assert qr.mean_word_length(TextStats("abc " * 9 + "ab"), Q) == (
        "mean_word_length",
        "2.9000 < 3",
    )
    assert qr.mean_word_length(TextStats("abcdefghij " * 10), Q) is None
    assert qr.mean_word_length(TextStats("abcdefghij " * 9 + "abcdefghijk"), Q)[1] == (
        "10.1000 > 10"
    )


@pytest.mark.parametrize(("symbol", "name"), [("#", "'#'"), ("...", "ellipsis"), ("…", "ellipsis")])
def test_symbol_ratio(symbol, name):
    def text(n_symbols):
        return " ".join(unique_words(100 - n_symbols) + [f"x{symbol}"] * n_symbols)

    assert qr.symbol_ratio(TextStats(text(10)), Q) is None  # 10 per 100 words
    reason, detail = qr.symbol_ratio(TextStats(text(11)), Q)
    assert reason == "symbol_ratio" and detail == f"{name} 0.1100 > 0.1"


def test_stop_words_need_two_occurrences():
    filler = " ".join(unique_words(60))
    assert qr.stop_words(TextStats(f"{filler} The end of it"), Q, "en") is None
    assert qr.stop_words(TextStats(f"{filler} the end"), Q, "en") == ("stop_words", "1 < 2")
    # whole words only: "other", "bethe", "tothe" hold no stop word
    assert qr.stop_words(TextStats(f"{filler} other bethe tothe"), Q, "")[1] == "0 < 2"


@pytest.mark.parametrize(
    ("lang", "applies"),
    [("", True), ("en", True), ("en-GB", True), ("en_US", True), ("de", False), ("fr", False)],
)
def test_stop_word_rule_only_for_english_or_unknown(lang, applies):
    german = prose(120, stop=("der", "die", "und", "das", "mit"))
    verdict = qr.stop_words(TextStats(german), Q, lang)
    assert (verdict is not None) == applies
    # and through the whole rule set: German text passes as "de", fails as "en"
    assert evaluate(german, "books", lang, QualityParams()).verdict == (
        ("stop_words", "0 < 2") if applies else None
    )


def test_alpha_words():
    def text(n_alpha, n_numbers, n_dashes=0):
        return " ".join(unique_words(n_alpha) + ["1790"] * n_numbers + ["—"] * n_dashes)

    assert qr.alpha_words(TextStats(text(80, 20)), Q) is None
    assert qr.alpha_words(TextStats(text(79, 21)), Q) == ("alpha_words", "0.7900 < 0.8")
    # lone punctuation tokens are not words: a table of "-" separators does not count against
    assert qr.alpha_words(TextStats(text(80, 20, n_dashes=50)), Q) is None


def test_bullet_lines():
    def text(n_bullets):
        bullets = [f"{'  ' if i % 2 else ''}{'•-*'[i % 3]} item {i}" for i in range(n_bullets)]
        return "\n\n".join(bullets + [f"plain line {i}" for i in range(100 - n_bullets)])

    assert qr.bullet_lines(TextStats(text(90)), Q) is None  # blank lines do not count
    assert qr.bullet_lines(TextStats(text(91)), Q) == ("bullet_lines", "0.9100 > 0.9")


def test_ellipsis_lines():
    def text(n):
        ends = [f"and then {i}{'...' if i % 2 else '…'}  " for i in range(n)]
        return "\n".join(ends + [f"plain line {i}." for i in range(100 - n)] + [""] * 5)

    assert qr.ellipsis_lines(TextStats(text(30)), Q) is None
    assert qr.ellipsis_lines(TextStats(text(31)), Q) == ("ellipsis_lines", "0.3100 > 0.3")


# ---- Gopher repetition -------------------------------------------------------------------------


def test_dup_line_frac():
    def text(n_unique, n_same):
        return "\n".join([f"unique line number {i}" for i in range(n_unique)] + ["ok."] * n_same)

    assert qr.dup_lines(TextStats(text(69, 31)), R) is None  # 30 of 100 lines repeat
    assert qr.dup_lines(TextStats(text(68, 32)), R) == ("dup_line_frac", "0.3100 > 0.3")


def test_dup_line_char_frac():
    def text(repeated_len):
        lines = [f"unique{i:03d}x" for i in range(6)] + ["r" * repeated_len] * 2
        return "\n".join(lines)

    assert qr.dup_lines(TextStats(text(20)), R) is None  # 20 of 100 characters repeat
    assert qr.dup_lines(TextStats(text(21)), R) == ("dup_line_char_frac", "0.2059 > 0.2")


def test_dup_paragraphs():
    def fracs(n_unique, n_same):
        return "\n\n".join(
            [f"unique para {i}\nsecond line" for i in range(n_unique)] + ["ok."] * n_same
        )

    assert qr.dup_paragraphs(TextStats(fracs(69, 31)), R) is None
    assert qr.dup_paragraphs(TextStats(fracs(68, 32)), R) == ("dup_para_frac", "0.3100 > 0.3")

    def chars(repeated_len):
        paras = [f"unique{i:03d}x" for i in range(6)] + ["r" * repeated_len] * 2
        return "\n  \n".join(paras)  # a line of spaces is a paragraph break too

    assert qr.dup_paragraphs(TextStats(chars(20)), R) is None
    assert qr.dup_paragraphs(TextStats(chars(21)), R)[0] == "dup_para_char_frac"


@pytest.mark.parametrize(
    ("n", "gram", "at_limit", "others"),
    [(2, "ab cd", 10, 40), (3, "ab cd ef", 6, 41), (4, "ab cd ef gh", 4, 42)],
)
def test_top_ngram(n, gram, at_limit, others):
    """The most frequent n-gram's characters: exactly the paper's fraction of 200, then more."""

    def text(count):
        fill = iter(unique_words(others))
        parts = []
        for i in range(count):
            parts.append(gram)
            parts += [next(fill) for _ in range(others // count + (i < others % count))]
        return " ".join(parts)

    limit = R.top_ngram_limits()[n - 2][1]
    assert qr.top_ngrams(TextStats(text(at_limit)), R) is None
    reason, detail = qr.top_ngrams(TextStats(text(at_limit + 1)), R)
    assert reason == f"top_{n}gram"
    assert gram.split()[0] not in detail  # no document text in drop details
    assert float(detail.split()[0]) > limit


def test_dup_5gram_just_past_threshold():
    block = ["abc", "def", "ghi", "jkl", "mno"]
    fill = unique_words(14, width=5)  # 70 characters
    text = " ".join(block + fill + block)  # the repeat: 15 of 100 characters
    assert qr.dup_ngrams(TextStats(text), R) is None
    text = " ".join(block[:4] + ["mnop"] + fill + block[:4] + ["mnop"])  # 16 of 102
    assert qr.dup_ngrams(TextStats(text), R) == ("dup_5gram", "0.1569 > 0.15")


def test_dup_ngram_thresholds_fall_with_n():
    """A repeated 10-token block covers 1/9 at every n: within the 5..8-gram thresholds (0.15
    down to 0.12), over the 9-gram one (0.11); with more text, 1/10 passes even the 10-gram."""
    block = unique_words(10, prefix="b")  # 40 characters
    fill = unique_words(70, prefix="f")  # 280 characters, total 360 with the block twice
    text = " ".join(block + fill + block)
    assert qr.dup_ngrams(TextStats(text), R) == ("dup_9gram", "0.1111 > 0.11")
    fill = unique_words(80, prefix="f")  # 40 of 400: exactly 0.10, the last threshold
    assert qr.dup_ngrams(TextStats(" ".join(block + fill + block)), R) is None


def test_overlapping_repeats_count_once():
    # "x" seven times: 5-grams at 1 and 2 repeat the one at 0; they cover tokens 1..6 once each
    text = " ".join(["x"] * 7 + unique_words(20, width=5))
    frac = 6 / (7 + 20 * 5)
    assert qr.dup_ngrams(TextStats(text), only(dup_5gram=frac)) is None
    assert qr.dup_ngrams(TextStats(text), only(dup_5gram=frac - 1e-9))[0] == "dup_5gram"


# reference implementations, deliberately naive, to check the fast ones against


def brute_top(tokens, n):
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    top = max(counts.values())
    return max(sum(map(len, g)) * top for g, c in counts.items() if c == top)


def brute_dup(tokens, n):
    seen, covered = set(), [False] * len(tokens)
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            covered[i : i + n] = [True] * n
        seen.add(gram)
    return sum(len(t) for t, c in zip(tokens, covered, strict=True) if c)


def brute_verdict(tokens, limits, measure):
    total = sum(map(len, tokens))
    for n, limit in limits:
        if limit is not None and len(tokens) >= n and measure(tokens, n) / total > limit:
            return n
    return None


@pytest.mark.parametrize("seed", range(200))
def test_ngram_rules_match_a_naive_count(seed):
    rng = random.Random(seed)
    vocab = ["a", "bb", "the", "whale", "naïve", "𝔘𝔫𝔦", "—", "x" * 17, "x" * 16 + "y", "Ahab,"]
    tokens = rng.choices(vocab[: rng.randint(2, len(vocab))], k=rng.randint(1, 150))
    text = "".join(t + rng.choice([" ", "\n", "\t", "\u3000", "\n\n"]) for t in tokens)
    p = GopherRepetitionParams(
        **{f"top_{n}gram": rng.choice([None, rng.random()]) for n in (2, 3, 4)},
        **{f"dup_{n}gram": rng.choice([None, rng.random() ** 3]) for n in range(5, 11)},
    )
    s = TextStats(text)
    top, dup = qr.top_ngrams(s, p), qr.dup_ngrams(s, p)
    assert (top and int(top[0][4])) == brute_verdict(tokens, p.top_ngram_limits(), brute_top)
    want = brute_verdict(tokens, p.dup_ngram_limits(), brute_dup)
    assert (dup and int(dup[0][4:-4])) == want


# ---- C4 ----------------------------------------------------------------------------------------

WEB = """Home | About | Contact
Welcome to our site. We sell many fine things to many people.
This line has citation markers [1] and ends properly.[2]
Short line.
Please enable JavaScript to view this page properly.
By using this site you agree to our Terms of Use and privacy policy.
He said "this is a quoted sentence right here."
It was a dark and stormy night...
Another good sentence is here! And a second one follows it?
"""


def test_c4_rewrites_lines():
    text, removed, verdict = qr.c4_lines(WEB, C4Params())
    assert verdict is None and removed == 5
    assert text == (
        "Welcome to our site. We sell many fine things to many people.\n"
        "This line has citation markers and ends properly.\n"
        'He said "this is a quoted sentence right here."\n'
        "Another good sentence is here! And a second one follows it?"
    )


def test_c4_page_rules():
    p = C4Params()
    lorem = WEB + "Lorem ipsum dolor sit amet, consectetur adipiscing.\n"
    assert qr.c4_lines(lorem, p)[2][0] == "c4_lorem_ipsum"
    code = WEB + "Call the function f() { return 42; } to get the answer.\n"
    assert qr.c4_lines(code, p)[2][0] == "c4_curly_bracket"
    # only lines that survive the line rules count (as in TFDS c4_utils): a menu line is dropped
    assert qr.c4_lines(WEB + "{menu} lorem ipsum\n", p)[2] is None
    few = "One good sentence is right here.\nAnd here is another good one!\nnav | menu\n"
    _, removed, verdict = qr.c4_lines(few, p)
    assert verdict == ("c4_too_few_sentences", "2 < 3 after removing 1 lines")
    assert qr.c4_lines(few, C4Params(min_sentences=2))[2] is None


def test_c4_lines_apply_only_to_listed_kinds():
    book = prose(300, per_line=9).replace(".", "")  # hard-wrapped: no line ends a sentence
    p = QualityParams.from_dict({"fineweb": {"kinds": []}})  # FineWeb's would drop it first
    assert evaluate(book, "books", "en", p) == (book, None, 0)
    text, verdict, removed = evaluate(book, "web", "en", p)
    assert verdict[0] == "c4_too_few_sentences" and removed == book.count("\n") + 1
    web = WEB + prose(96)  # eight 12-word lines
    text, verdict, removed = evaluate(web, "web", "en", p)
    assert verdict is None and removed == 5 and "JavaScript" not in text
    assert evaluate(web, "mail", "en", QualityParams.from_dict({"c4": {"kinds": ["mail"]}}))[2] == 5


# ---- the rule set and its params ---------------------------------------------------------------


def test_ordinary_prose_passes_every_rule():
    for seed in range(5):
        assert evaluate(prose(400, seed), "books", "en", QualityParams()).verdict is None


def test_first_failing_rule_is_the_reason():
    # too short and repetitive and full of '#': the cheap word count decides
    assert evaluate("# # spam spam\n" * 5, "books", "", QualityParams()).verdict[0] == (
        "too_few_words"
    )
    assert evaluate("#spam " * 60, "books", "", QualityParams()).verdict[0] == "symbol_ratio"
    huge = QualityParams(length=LengthParams(max_chars=100))
    assert evaluate("x" * 101, "web", "", huge).verdict == ("too_long", "101 chars > 100")


def test_params_from_dict():
    p = QualityParams.from_dict(
        {
            "length": {"max_chars": 1000},
            "gopher_quality": {"max_words": None, "min_words": 20.0, "stop_words": ["the", "a"]},
            "gopher_repetition": {"dup_line_frac": 0.35, "top_2gram": None},
            "c4": {"kinds": ["web", "mail"], "javascript": False},
        }
    )
    assert p.length == LengthParams(min_chars=1, max_chars=1000)
    assert p.gopher_quality.max_words is None and p.gopher_quality.min_words == 20
    assert p.gopher_quality.stop_words == ("the", "a")
    assert p.gopher_repetition.dup_line_frac == 0.35 and p.gopher_repetition.top_2gram is None
    assert p.c4.kinds == ("web", "mail") and p.c4.javascript is False
    assert QualityParams.from_dict({}) == QualityParams.from_dict(None) == QualityParams()
    assert pickle.loads(pickle.dumps(p)) == p and hash(p) == hash(pickle.loads(pickle.dumps(p)))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"lenght": {}}, ["quality.lenght", "did you mean 'length'"]),
        ({"gopher_quality": {"min_wordz": 3}}, ["quality.gopher_quality.min_wordz", "min_words"]),
        ({"c4": {"zzz": 1}}, ["quality.c4.zzz", "known:", "kinds"]),
        ({"length": {"min_chars": "three"}}, ["quality.length.min_chars", "'three'"]),
        ({"c4": {"javascript": 1}}, ["quality.c4.javascript"]),
        ({"c4": {"kinds": "web"}}, ["quality.c4.kinds"]),
        ({"gopher_quality": {"min_words": True}}, ["quality.gopher_quality.min_words"]),
        ({"gopher_quality": {"min_words": 2.5}}, ["quality.gopher_quality.min_words"]),
        ({"c4": 3}, ["quality.c4", "expected a mapping"]),
        ({"gopher_repetition": {"dup_5gram": 1.5}}, ["gopher_repetition.dup_5gram", "range"]),
        ({"length": {"min_chars": -1}}, ["quality.length.min_chars", "range"]),
        ({"gopher_quality": {"min_words": 500, "max_words": 100}}, ["min_words 500 > max_words"]),
    ],
)
def test_params_from_dict_rejects(overrides, words):
    with pytest.raises(ValueError) as err:
        QualityParams.from_dict(overrides)
    message = str(err.value)
    assert all(w in message for w in words), message
    assert "\n" not in message
