import pytest

from omniemo.answers import (
    extract_answer,
    extract_think,
    format_ok,
    normalized_match,
    parse_label,
    render_output,
    strict_match,
)
from omniemo.labels import CREMAD, DFEW, LABEL_SETS, MAFW, MER2023, RAVDESS, get_labelset, normalize_answer


def test_vocabulary_sizes_and_official_codes():
    assert {name: len(ls.labels) for name, ls in LABEL_SETS.items()} == {
        "dfew": 7, "mafw": 11, "ravdess": 8, "cremad": 6, "mer2023": 6, "ased": 5, "urdu": 4, "emodb": 7, "tess": 7,
        "savee": 7, "emovo": 7, "shemo": 6, "subesco": 7, "enterface": 6, "jaffe": 7, "kdef": 7, "ckplus": 8,
        "fer2013": 7, "rafdb": 7}
    # every label of every set is an emotion the answers can name (so fusion can map it to a concept)
    assert all(normalize_answer(label, ls) == label for ls in LABEL_SETS.values() for label in ls.labels)
    assert [DFEW.from_code(i) for i in range(1, 8)] == ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
    assert [MAFW.from_code(n) for n in ("anger", "happiness", "contempt", "anxiety", "helplessness", "disappointment")] == [
        "angry", "happy", "contemptuous", "anxious", "helpless", "disappointed"]
    assert [RAVDESS.from_code(c) for c in ("01", "02", "06", "08", "3")] == ["neutral", "calm", "fear", "surprise", "happy"]
    assert [CREMAD.from_code(c) for c in ("ANG", "dis", "FEA", "H", "N")] == ["angry", "disgust", "fear", "happy", "neutral"]
    # the face sets' release codes: FER2013 counts from 0 (angry), RAF-DB from 1 (surprise)
    assert [LABEL_SETS["fer2013"].from_code(i) for i in range(7)] == ["angry", "disgust", "fear", "happy", "sad",
                                                                      "surprise", "neutral"]
    assert [LABEL_SETS["rafdb"].from_code(i) for i in range(1, 8)] == ["surprise", "fear", "disgust", "happy", "sad",
                                                                       "angry", "neutral"]
    with pytest.raises(KeyError, match="not a dfew emotion code"):
        DFEW.from_code(9)


@pytest.mark.parametrize("text,labelset,expected", [
    ("Anger.", DFEW, "angry"),
    ("  HAPPINESS ", DFEW, "happy"),
    ("the person is fearful", DFEW, "fear"),
    ("scared", CREMAD, "fear"),
    ("Surprised!", RAVDESS, "surprise"),
    ("sadness", MAFW, "sad"),
    ("worried", MER2023, "worried"),
    ("anxiety", MER2023, "worried"),
    ("worried", MAFW, "anxious"),
    ("not happy but sad", DFEW, "sad"),
    ("calm", RAVDESS, "calm"),
])
def test_normalisation(text, labelset, expected):
    assert normalize_answer(text, labelset) == expected


@pytest.mark.parametrize("text,labelset", [
    ("worried", DFEW),          # the concept is not in DFEW's vocabulary
    ("contempt", DFEW),
    ("calm", DFEW),             # no silent calm->neutral outside the corrected protocol
    ("happy and sad", DFEW),    # two labels: ambiguous
    ("banana", DFEW),
    ("", DFEW),
    (None, DFEW),
])
def test_unparseable(text, labelset):
    assert normalize_answer(text, labelset) is None


def test_custom_label_list():
    custom = get_labelset("happy, sad, angry")
    assert custom.labels == ("happy", "sad", "angry")
    assert custom.normalize("Anger") == "angry"
    assert custom.normalize("fear") is None
    with pytest.raises(ValueError, match="it knows .*bored"):  # the message lists the words it knows
        get_labelset("happy,blorf")
    # EmoDB's and IEMOCAP's labels that no model here says are still labels a corpus can be scored in
    emodb = get_labelset("neutral,happiness,sadness,anger,fear,disgust,boredom")
    assert emodb.normalize("she sounds bored") == "boredom" and emodb.normalize("Langeweile") is None
    assert get_labelset("neutral,frustrated,angry").normalize("frustration") == "frustrated"
    with pytest.raises(ValueError):
        get_labelset("nonsense")


def test_extract_answer_reference_semantics():
    assert extract_answer("<think>x</think>\n<answer>sad</answer>") == "sad"
    assert extract_answer("<answer>a\nb</answer><answer>c</answer>") == "a\nb"  # first match, across lines
    assert extract_answer("just angry") == "just angry"  # no tag: the whole output
    assert extract_think("<think>brows low</think><answer>angry</answer>") == "brows low"
    assert extract_think("angry") is None


def test_strict_match_is_exact_after_strip():
    assert strict_match("<think>..</think><answer> angry </answer>", "angry")
    assert strict_match("angry\n", "angry")
    assert not strict_match("<answer>Angry</answer>", "angry")  # no case folding in the reference
    assert not strict_match("<answer>anger</answer>", "angry")  # no synonyms either


def test_normalized_match_and_parse():
    assert normalized_match("<answer>Anger</answer>", "angry", "dfew")
    assert parse_label("<think>x</think><answer>Fearful.</answer>", "ravdess") == "fear"
    assert parse_label("<answer>worried</answer>", "dfew") is None
    assert not normalized_match("<answer>worried</answer>", "fear", "dfew")


@pytest.mark.parametrize("output,ok", [
    ("<think>a</think>\n<answer>sad</answer>", True),
    ("<think>a\nb</think>  \n\n<answer>sad</answer>", True),
    ("<think></think><answer></answer>", True),
    ("<answer>sad</answer>", False),
    ("<think>a</think>\n<answer>sad</answer>\n", False),  # fullmatch: nothing after the answer
    (" <think>a</think><answer>sad</answer>", False),
    ("<think>a</think> text <answer>sad</answer>", False),
])
def test_format_check(output, ok):
    assert format_ok(output) is ok


def test_render_output_passes_the_format_check():
    out = render_output("The brows are lowered (face, 0.4-1.2 s).", "angry")
    assert format_ok(out) and strict_match(out, "angry")
