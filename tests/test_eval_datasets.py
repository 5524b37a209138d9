"""Evaluation datasets: the four formats load into EvalItems, bad files are clean errors, the dev set is sound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import ConfigError, FootnoteError
from rag.eval import EvalItem, load_dataset
from rag.eval.datasets import DatasetError
from rag.eval.metrics import normalize_answer, normalize_whitespace

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
REPO = Path(__file__).resolve().parent.parent


def test_jsonl_fills_defaults_and_ignores_unknown_keys() -> None:
    dataset = load_dataset(FIXTURES / "ours.jsonl")

    assert dataset.format == "jsonl"
    assert dataset.documents == {}
    assert dataset.items == [
        EvalItem(id="lenin", question="Who announced the New Economic Policy?", reference_answer="Lenin, in 1921.",
                 reference_contexts=["The New Economic Policy was announced by Lenin in March 1921."],
                 answerable=True, answers=["Lenin", "Vladimir Lenin"]),
        EvalItem(id="harvest", question="What was the Soviet grain harvest in 1937?", reference_answer="",
                 reference_contexts=[], answerable=False, answers=[]),
        # No id: numbered by position among questions (the blank line does not count).
        EvalItem(id="q3", question="Which dam was built on the Dnieper?", reference_answer="Dneprostroi.",
                 reference_contexts=["The Dneprostroi dam on the Dnieper was the largest in Europe."],
                 answerable=True, answers=[]),
    ]


def test_llamaindex_rag_dataset_maps_query_and_references() -> None:
    dataset = load_dataset(FIXTURES / "rag_dataset.json")

    assert dataset.format == "llamaindex"
    assert [i.question for i in dataset.items] == [
        "Who announced the New Economic Policy?", "Which dam was built on the Dnieper?"]
    assert dataset.items[0].reference_answer == "Lenin announced it in March 1921."
    assert dataset.items[1].reference_contexts == [
        "The Dneprostroi dam on the Dnieper was the largest in Europe.", "It opened in 1932."]
    assert all(i.answerable for i in dataset.items)
    assert [i.id for i in dataset.items] == ["q1", "q2"]


def test_squad_v2_paragraphs_become_documents_and_impossible_questions_unanswerable() -> None:
    dataset = load_dataset(FIXTURES / "squad_v2.json")

    assert dataset.format == "squad"
    by_id = {i.id: i for i in dataset.items}
    assert list(by_id) == ["m1", "m2", "d1"]
    tomioka = by_id["m1"]
    assert tomioka.answerable
    assert tomioka.answers == ["1872", "in 1872"]  # duplicates dropped, order kept
    assert tomioka.reference_answer == "1872"
    # The reference context is the sentence holding the answer span, not the whole paragraph.
    assert tomioka.reference_contexts == ["The Tomioka Silk Mill opened in 1872 in Gunma prefecture."]
    impossible = by_id["m2"]
    assert not impossible.answerable
    assert impossible.answers == [] and impossible.reference_contexts == []
    assert by_id["d1"].reference_contexts == [
        "Hugh Hammond Bennett became the first chief of the Soil Conservation Service."]

    assert len(dataset.documents) == 2
    assert all(name.endswith(".txt") for name in dataset.documents)
    texts = list(dataset.documents.values())
    assert texts[0].startswith("Meiji Restoration\n\n")
    for item in dataset.items:
        for context in item.reference_contexts:
            assert any(context in text for text in texts)


def test_squad_v1_questions_are_answerable() -> None:
    dataset = load_dataset(FIXTURES / "squad_v1.json")

    assert dataset.format == "squad"
    [item] = dataset.items
    assert item.answerable and item.answers == ["Robert Geiger"]
    assert item.reference_contexts == ["The term was coined by Robert Geiger."]


def test_csv_headers_match_case_insensitively_and_delimiter_is_sniffed() -> None:
    dataset = load_dataset(FIXTURES / "qa.csv")

    assert dataset.format == "csv"
    q1, q2, q3 = dataset.items
    assert (q1.id, q1.question, q1.reference_answer, q1.answerable) == (
        "q1", "Who announced the New Economic Policy?", "Lenin", True)
    # Quoted cells keep the delimiter; an explicit "no" makes a question unanswerable.
    assert q2.question == "What was the grain harvest; in tonnes, in 1937?"
    assert not q2.answerable
    # Answerable cell left empty: decided by whether there is an answer.
    assert q3.reference_answer == "Dneprostroi; the largest dam in Europe"
    assert q3.answerable


def test_csv_with_query_and_reference_answer_columns(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text('query,reference_answer,contexts\n"Who?",Lenin,"[""ctx one"", ""ctx two""]"\nWhat?,,\n',
                    encoding="utf-8")

    first, second = load_dataset(path).items

    assert first.question == "Who?" and first.reference_contexts == ["ctx one", "ctx two"]
    assert not second.answerable  # no answerable column and no answer


def test_csv_without_answer_column_names_the_columns_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("question,notes\nWho?,x\n", encoding="utf-8")

    with pytest.raises(DatasetError, match="answer column") as info:
        load_dataset(path)
    assert "question, notes" in str(info.value)


def test_unknown_json_shape_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "weird.json"
    path.write_text(json.dumps({"rows": [1, 2]}), encoding="utf-8")

    with pytest.raises(DatasetError, match="unknown dataset format") as info:
        load_dataset(path)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, FootnoteError)


def test_unrecognised_text_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some prose\nwithout questions\n", encoding="utf-8")

    with pytest.raises(DatasetError, match="unknown dataset format"):
        load_dataset(path)


@pytest.mark.parametrize("content, message", [
    ('{"question": "a"}\n{"question": \n', r"bad\.jsonl:2: invalid JSON"),
    ('{"question": ""}\n', "non-empty string"),
    ('{"question": "a", "answerable": "yes"}\n', "true or false"),
    ('{"question": "a", "reference_contexts": [1, 2]}\n', "list of strings"),
    ('{"question": "a", "split": 1}\n', "\"split\" must be a string"),
    ('{"id": "x", "question": "a"}\n{"id": "x", "question": "b"}\n', "appears twice"),
    ("\n\n", "empty"),
])
def test_malformed_jsonl_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_missing_file_and_folder_are_clean_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset(tmp_path)


def test_non_utf8_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("question,answer\nCaf\xe9?,oui\n".encode("latin-1"))

    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(path)


def test_forced_kind_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "set.txt"
    path.write_text('{"question": "Who?"}\n', encoding="utf-8")

    assert load_dataset(path, kind="jsonl").items[0].question == "Who?"
    with pytest.raises(DatasetError, match="Unknown dataset format 'xml'"):
        load_dataset(path, kind="xml")


def test_dev_set_meets_its_contract() -> None:
    """evals/dev.jsonl: 44+ questions, 12+ unanswerable, contexts exact and in one document each."""
    dataset = load_dataset(REPO / "evals" / "dev.jsonl")
    corpus = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "evals" / "corpus").glob("*.txt")}
    items = dataset.items

    assert len(items) >= 44
    assert sum(not i.answerable for i in items) >= 12
    assert (REPO / "evals" / "corpus" / "stalin-industrialisation-vs-great-leap-forward.txt").read_bytes() == (
        REPO / "corpus" / "stalin-industrialisation-vs-great-leap-forward.txt").read_bytes()
    assert 5 <= len(corpus) - 1 <= 7
    for name, text in corpus.items():
        if not name.startswith("stalin"):
            assert 300 <= len(text.split()) <= 800, name
    for item in items:
        if not item.answerable:
            assert not item.reference_contexts and not item.answers, item.id
            continue
        assert item.reference_contexts and item.answers and item.reference_answer, item.id
        for context in item.reference_contexts:
            holders = [name for name, text in corpus.items() if context in text]
            assert len(holders) == 1, (item.id, holders)
        contexts = " ".join(normalize_answer(c) for c in item.reference_contexts)
        assert any(normalize_answer(a) in contexts for a in item.answers), item.id
        assert normalize_whitespace(item.question) == item.question


def test_split_selects_its_rows_and_rows_without_a_split_belong_to_every_split(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "c", "question": "a", "split": "calibration"}\n'
                    '{"id": "h", "question": "b", "split": "heldout"}\n'
                    '{"id": "both", "question": "c"}\n', encoding="utf-8")
    dataset = load_dataset(path)

    assert dataset.splits == ["calibration", "heldout"]
    assert [i.id for i in dataset.select("heldout")] == ["h", "both"]
    assert [i.id for i in dataset.select("calibration")] == ["c", "both"]
    with pytest.raises(DatasetError, match="no split 'test'; its splits are calibration, heldout"):
        dataset.select("test")


def test_dataset_without_splits_is_whole_in_any_split() -> None:
    dataset = load_dataset(FIXTURES / "ours.jsonl")

    assert dataset.splits == [] and all(i.split == "" for i in dataset.items)
    assert dataset.select("heldout") == dataset.items


def test_csv_split_column_is_read(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("question,answer,split\nWho?,Lenin,heldout\nWhat?,Nepmen,\n", encoding="utf-8")

    assert [i.split for i in load_dataset(path).items] == ["heldout", ""]


def test_paraphrase_set_meets_its_contract() -> None:
    """evals/paraphrase.jsonl: 80+ answerable and 25+ unanswerable questions on all seven documents,
    exact contexts, answers found in them, and halves stratified by document and answerability."""
    dataset = load_dataset(REPO / "evals" / "paraphrase.jsonl")
    corpus = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "evals" / "corpus").glob("*.txt")}
    records = [json.loads(line) for line in (REPO / "evals" / "paraphrase.jsonl").read_text("utf-8").splitlines()]
    items = dataset.items

    assert sum(i.answerable for i in items) >= 80 and sum(not i.answerable for i in items) >= 25
    assert dataset.splits == ["calibration", "heldout"]
    assert {r["source"] for r in records} == set(corpus)
    strata: dict[tuple[str, bool], list[str]] = {}
    for item, record in zip(items, records, strict=True):
        strata.setdefault((record["source"], item.answerable), []).append(item.split)
        assert normalize_whitespace(item.question) == item.question
        if not item.answerable:
            assert not item.reference_contexts and not item.answers and not item.reference_answer, item.id
            continue
        assert item.reference_contexts and item.answers and item.reference_answer, item.id
        assert record["source"] in [name for c in item.reference_contexts for name, t in corpus.items() if c in t]
        for context in item.reference_contexts:
            assert len([name for name, text in corpus.items() if context in text]) == 1, item.id
        contexts = " ".join(normalize_answer(c) for c in item.reference_contexts)
        assert any(normalize_answer(a) in contexts for a in item.answers), item.id
        assert any(normalize_answer(a) in normalize_answer(item.reference_answer) for a in item.answers), item.id
    for key, splits in strata.items():
        assert abs(splits.count("calibration") - splits.count("heldout")) <= 1, key
    seed = "stalin-industrialisation-vs-great-leap-forward.txt"
    per_doc = {name: sum(len(v) for (n, _), v in strata.items() if n == name) for name in corpus}
    assert per_doc[seed] == max(per_doc.values())


def test_offtopic_set_meets_its_contract() -> None:
    """evals/offtopic.jsonl: 30 unanswerable questions split in halves, none of whose distinctive
    words the evaluation corpus uses (so none is answerable from it by accident)."""
    dataset = load_dataset(REPO / "evals" / "offtopic.jsonl")
    corpus = " ".join(normalize_answer(p.read_text(encoding="utf-8")) for p in (REPO / "evals" / "corpus").glob("*.txt"))
    items = dataset.items

    assert len(items) >= 30 and not any(i.answerable for i in items)
    assert [i.split for i in items].count("calibration") == [i.split for i in items].count("heldout")
    for item in items:
        assert not item.reference_contexts and not item.answers and not item.reference_answer, item.id
    for rare in ("marshall plan", "keynes", "nehru", "bitcoin", "everest", "brexit", "insulin", "borscht"):
        assert rare not in corpus, rare


def test_squad_slice_meets_its_contract() -> None:
    """evals/squad-v2-dev-slice.json: SQuAD 2.0 questions the team did not write, read as SQuAD,
    about as many unanswerable as answerable, every answer found in the paragraph it belongs to."""
    dataset = load_dataset(REPO / "evals" / "squad-v2-dev-slice.json")
    items = dataset.items

    assert dataset.format == "squad" and len(dataset.documents) == 43
    assert len(items) == 263 and sum(i.answerable for i in items) == 132
    assert len({i.id for i in items}) == len(items)
    paragraphs = [normalize_whitespace(text) for text in dataset.documents.values()]
    for item in items:
        if item.answerable:
            assert item.reference_contexts and item.answers, item.id
            assert any(item.answers[0] in p and normalize_whitespace(item.reference_contexts[0]) in p
                       for p in paragraphs), item.id
        else:
            assert not item.answers and not item.reference_contexts, item.id
