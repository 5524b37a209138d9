"""The command tree: one parser per command shared by `python -m rag`, `ingest.py`, `app.py` and
`python -m rag.eval`; flags declared once; backend choices from the registry."""

from __future__ import annotations

import io

import pytest

from rag import cli
from rag.answer import backend_names
from rag.answer.prompt import LOCAL_REFUSAL
from rag.config import Settings
from rag.flags import settings_from
from tests.scripted import ScriptedBackend

BRAMALL_QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str], **shim: str) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv, **shim)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_tree_has_the_five_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    assert "{ingest,ask,chat,eval,serve}" in capsys.readouterr().out


@pytest.mark.parametrize("command, prog", [("ingest", "ingest.py"), ("serve", "app.py"),
                                           ("eval", "python -m rag.eval")])
def test_shims_parse_with_the_trees_command_under_their_own_name(capsys: pytest.CaptureFixture[str],
                                                                  command: str, prog: str) -> None:
    argv = ["data.jsonl", "--frobnicate"] if command == "eval" else ["--frobnicate"]
    err = _usage_error(capsys, argv, command=command, prog=prog)
    assert err.startswith(f"usage: {prog} ") and "unrecognized arguments: --frobnicate" in err


def test_backend_choices_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["ask", "q", "--backend", "nonesuch"], ["eval", "d.jsonl", "--backend", "nonesuch"]):
        err = _usage_error(capsys, argv)
        assert "invalid choice: 'nonesuch'" in err
        assert all(f"'{name}'" in err for name in ["auto", *backend_names()])


def test_a_backend_registered_later_is_accepted(scripted: object) -> None:
    args = cli.parser().parse_args(["ask", "q", "--backend", "scripted"])
    assert args.backend == "scripted"


def test_flags_map_to_settings(tmp_path: object) -> None:
    args = cli.parser().parse_args(["ask", "q", "--k", "3", "--no-hybrid", "--mmr", "--backend", "extractive",
                                    "--model", "m", "--data-dir", str(tmp_path)])
    settings = settings_from(args)
    assert (settings.retrieval.top_k, settings.retrieval.hybrid, settings.retrieval.mmr) == (3, False, True)
    assert (settings.answer.backend, settings.answer.model) == ("extractive", "m")
    assert str(settings.data_dir) == str(tmp_path)


def test_ingest_flags_work_before_and_after_the_action() -> None:
    before = cli.parser("ingest").parse_args(["--json", "list"])
    after = cli.parser("ingest").parse_args(["list", "--json"])
    assert before.json is True and after.json is True and before.action == after.action == "list"


def test_the_cli_lists_unsupported_sentences_and_corrected_citations(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.console import print_sources
    from rag.types import Answer, Citation, Passage, Sentence

    passage = Passage(marker=1, id="a", text="Bramall argues labour left the fields.", source="a.txt",
                      title="Notes", score=1.0, start=0, end=38)
    answer = Answer(question="Who?", text="Bramall argues labour left the fields [1]. Mao was a farmer [1].",
                    citations=(Citation(1, passage, "Bramall argues labour left the fields.", True, 0.9),),
                    sentences=(Sentence("Bramall argues labour left the fields [1].", (1,), True, attributed=True),
                               Sentence("Mao was a farmer [1].", (1,), False)))
    print_sources(answer)
    out = capsys.readouterr().out
    assert "citation corrected by the check: Bramall argues" in out
    assert "not supported by its source: Mao was a farmer" in out
    assert "corrected by the check: Mao" not in out


def test_chat_shows_the_quotes_that_replace_a_declined_answer(seeded: Settings, scripted: ScriptedBackend,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # The writer declines a question the passages answer: the chat must print the passages' own
    # sentences it falls back to, not only its sources (it printed the decline and no answer text).
    scripted.script(LOCAL_REFUSAL)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{BRAMALL_QUESTION}\nthanks!\n\n"))
    code = cli.main(["chat", "--backend", "scripted", "--data-dir", str(seeded.data_dir),
                     "--corpus", str(seeded.corpus_dir)])
    out = capsys.readouterr().out
    assert code == 0
    decline, rest = out.split(LOCAL_REFUSAL, 1)
    assert decline.strip() == "you>"
    quotes, sources = rest.split("(quoted instead:", 1)
    assert "Chinese Economic Development" in quotes and "[1]" in quotes
    assert "Bramall" in sources
    assert "You're welcome." in out  # the second message: conversation, answered without the writer
    assert len(scripted.seen) == 1
