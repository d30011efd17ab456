"""The practice bank's loader: TOML files in, checked questions out, and an error that
names the file, the question and the field for a bad entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from visualizer.learning.practice import BANK, QUESTIONS, BankError, Choice, load_bank

QUESTION = '''
[[question]]
slug = "q-one"
prompt = """
A prompt that is wrapped
    over two lines."""
hint = "A hint."
solution = ["Step one.", "Step two."]
mistakes = ["A mistake."]
try_it = { lab = "async-io", requests = 20, delay_ms = 300 }
checks = ["test_a_check"]

[[question.choice]]
text = "Right."
correct = true
why = "Because."

[[question.choice]]
text = "Wrong."
why = "Because not."

[[question.choice]]
text = "Also wrong."
why = "Because not either."
'''


def bank(tmp_path: Path, **files: str) -> Path:
    for level, text in files.items():
        (tmp_path / f"{level}.toml").write_text(text)
    return tmp_path


def error(folder: Path, **kwargs: object) -> str:
    with pytest.raises(BankError) as raised:
        load_bank(folder, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_it_loads_the_bank_shipped_in_the_package():
    assert (
        Path(str(BANK)) == Path(__file__).parents[3] / "visualizer" / "learning" / "practice_bank"
    )
    assert load_bank() == QUESTIONS


def test_it_reads_a_question_and_folds_its_wrapped_text(tmp_path: Path):
    (question,) = load_bank(bank(tmp_path, medium=QUESTION), checks={"test_a_check": print})

    assert question.slug == "q-one" and question.level == "medium"
    assert question.prompt == "A prompt that is wrapped over two lines."
    assert question.choices[0] == Choice("Right.", True, "Because.")
    assert [choice.correct for choice in question.choices] == [True, False, False]
    assert question.solution == ("Step one.", "Step two.")
    assert question.checks == ("test_a_check",)
    assert question.try_it == (
        "/lab/?scenario=async-io&requests=20&delay_ms=300&server=asgi&workers=1&threads=1"
    )


def test_it_keeps_the_levels_order_then_each_files_order(tmp_path: Path):
    second = QUESTION.replace('"q-one"', '"q-two"')
    folder = bank(tmp_path, hard=QUESTION.replace('"q-one"', '"q-three"'), easy=QUESTION + second)
    assert [(q.level, q.slug) for q in load_bank(folder)] == [
        ("easy", "q-one"),
        ("easy", "q-two"),
        ("hard", "q-three"),
    ]


def test_it_links_try_it_to_a_scenario_page(tmp_path: Path):
    text = QUESTION.replace(
        'try_it = { lab = "async-io", requests = 20, delay_ms = 300 }',
        'try_it = { scenario = "async-sleep" }',
    )
    (question,) = load_bank(bank(tmp_path, easy=text))
    assert question.try_it == "/scenarios/async-sleep/"


def test_it_names_the_file_of_bad_toml(tmp_path: Path):
    message = error(bank(tmp_path, easy=QUESTION.replace('hint = "A hint."', "hint = A hint.")))
    assert message.startswith("practice bank easy.toml: not valid TOML: ")
    assert "line 7" in message


def test_it_names_the_question_and_field_that_is_missing(tmp_path: Path):
    message = error(bank(tmp_path, easy=QUESTION.replace('hint = "A hint."\n', "")))
    assert message == "practice bank easy.toml, question 'q-one': hint: missing"


def test_it_names_a_question_without_a_slug_by_its_position(tmp_path: Path):
    text = QUESTION + QUESTION.replace('slug = "q-one"\n', "")
    assert error(bank(tmp_path, easy=text)) == "practice bank easy.toml, question 2: slug: missing"


def test_it_names_a_question_with_a_bad_slug_by_its_position(tmp_path: Path):
    assert error(bank(tmp_path, easy=QUESTION.replace('"q-one"', '"Q one"'))) == (
        "practice bank easy.toml, question 1: slug: only a-z, 0-9 and - are allowed, not 'Q one'"
    )


def test_it_names_a_check_that_is_not_a_truth_check(tmp_path: Path):
    folder = bank(tmp_path, hard=QUESTION.replace("test_a_check", "test_no_such_check"))
    assert error(folder, checks={"test_a_check": print}) == (
        "practice bank hard.toml, question 'q-one': checks: "
        "no truth check named 'test_no_such_check'"
    )


def test_it_names_a_slug_used_twice(tmp_path: Path):
    assert error(bank(tmp_path, easy=QUESTION, medium=QUESTION)) == (
        "practice bank medium.toml, question 'q-one': slug: "
        "already the slug of a question in easy.toml"
    )
    assert error(bank(tmp_path, easy=QUESTION + QUESTION)).endswith(
        "slug: already the slug of a question in easy.toml"
    )


def test_it_names_a_misspelt_field(tmp_path: Path):
    message = error(bank(tmp_path, easy=QUESTION.replace("hint =", "hnit =")))
    assert message.startswith("practice bank easy.toml, question 'q-one': hnit: not a known field")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (QUESTION[QUESTION.rindex("[[question.choice]]") :], "", "choice: 3 to 4 needed, found 2"),
        ('text = "Wrong."\n', 'text = "Wrong."\ncorrect = true\n', "choice: exactly one needs "),
        ('"Wrong."', '"Right."', "choice[1].text: the same as another choice's"),
        ('why = "Because."', 'why = "  "', "choice[0].why: must not be empty"),
        ("correct = true", 'correct = "yes"', "choice[0].correct: must be true or false"),
        ('["A mistake."]', "[]", "mistakes: 1 to 3 needed, found 0"),
        ('"Step two."]', '"Step two.", 3]', "solution[2]: must be a string, not a number"),
        ("requests = 20", 'requests = "20"', "try_it.requests: must be a whole number"),
        ("requests = 20", "requests = true", "try_it.requests: must be a whole number"),
        ("requests = 20, ", 'server = "uwsgi", requests = 20, ', "try_it.server: must be asgi"),
        ('lab = "async-io", ', 'scenario = "x", lab = "async-io", ', "try_it: needs either"),
        ('["test_a_check"]', '["not a name"]', "checks[0]: must be a test's name"),
    ],
)
def test_it_names_the_field_of_a_bad_value(tmp_path: Path, old: str, new: str, problem: str):
    assert old in QUESTION
    message = error(bank(tmp_path, easy=QUESTION.replace(old, new, 1)))
    assert message.startswith(f"practice bank easy.toml, question 'q-one': {problem}")


def test_it_refuses_a_file_that_is_not_a_level(tmp_path: Path):
    message = error(bank(tmp_path, easy=QUESTION, expert=QUESTION))
    assert message == (
        "practice bank expert.toml: not a level; "
        "a level's file is one of easy.toml, medium.toml, hard.toml"
    )


def test_it_refuses_an_empty_bank(tmp_path: Path):
    assert error(tmp_path).startswith(f"practice bank {tmp_path}: no questions")
    assert error(bank(tmp_path, easy="")) == "practice bank easy.toml: no [[question]] tables"


def test_it_links_a_question_to_a_suggested_edit(tmp_path: Path):
    text = QUESTION.replace(
        "checks =", 'edit = { scenario = "async-cpu", suggestion = "to-thread" }\nchecks ='
    )
    (question,) = load_bank(bank(tmp_path, hard=text))
    assert question.edit is not None
    assert question.edit.url == "/scenarios/async-cpu/?suggestion=to-thread#edit"
    assert question.edit.title == "Move the computing into asyncio.to_thread"


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        (
            '{ scenario = "async-cpu", suggestion = "faster" }',
            "edit: no suggested edit 'faster' for async-cpu (its edits: to-thread)",
        ),
        (
            '{ scenario = "async-quick", suggestion = "to-thread" }',
            "edit: no scenario 'async-quick' (known: async-io, sync-io,",
        ),
        ('{ scenario = "async-cpu" }', "edit.suggestion: missing"),
        ('{ scenario = "async-cpu", suggestion = "to-thread", lab = 1 }', "edit.lab: not a known"),
        ('"async-cpu"', "edit: must be a table, not a string"),
    ],
)
def test_it_names_the_file_and_question_of_a_link_to_an_unknown_edit(
    tmp_path: Path, link: str, problem: str
):
    text = QUESTION.replace("checks =", f"edit = {link}\nchecks =")
    message = error(bank(tmp_path, hard=text))
    assert message.startswith(f"practice bank hard.toml, question 'q-one': {problem}"), message
