"""The job config: validation messages, --set overrides, --source merging, the CLI's exit code."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, write

from gristmill.pipelines import cli
from gristmill.pipelines.config import ConfigError, apply_override, load, validate

ROOT = REPO


def minimal(**extra) -> dict:
    raw = {"sources": [{"kind": "books", "paths": ["books/*.txt"]}], "output": "out"}
    raw.update(extra)
    return raw


def error_of(raw) -> str:
    with pytest.raises(ConfigError) as info:
        validate(raw)
    return str(info.value)


# ---- a valid config ------------------------------------------------------------------------


def test_defaults_filled_in():
    cfg = validate(minimal())
    assert cfg.output == "out"
    assert [(s.name, s.kind, s.paths) for s in cfg.sources] == [("books", "books", ["books/*.txt"])]
    assert cfg.sources[0].options == {"strip_gutenberg": True}
    assert cfg.raw["runner"]["profile"] == "local" and cfg.raw["runner"]["workers"] == 1
    assert cfg.enabled("normalize") and cfg.enabled("quality")
    assert cfg.raw["read"]["on_invalid_utf8"] == "replace"


def test_job_file_loads(tmp_path):
    job = write(
        tmp_path / "job.yaml",
        "sources:\n"
        "  - name: news\n"
        "    kind: articles\n"
        "    paths: news/*.jsonl\n"
        "    options: {text_field: body, id_field: uid}\n"
        "normalize:\n  nfc: false\n"
        "runner:\n  workers: 2\n"
        "output: rel/out\n",
    )
    cfg = load(str(job))
    src = cfg.sources[0]
    assert (src.name, src.kind, src.paths) == ("news", "articles", ["news/*.jsonl"])
    assert src.options == {"format": "auto", "text_field": "body", "id_field": "uid"}
    assert cfg.raw["normalize"]["nfc"] is False
    assert cfg.raw["normalize"]["collapse_whitespace"] is True
    assert cfg.raw["runner"]["workers"] == 2


def test_config_hash_ignores_output_and_workers():
    a = validate(minimal())
    b = validate(minimal(output="elsewhere", runner={"workers": 3}))
    c = validate(minimal(seed=1))
    assert a.sha256() == b.sha256()
    assert a.sha256() != c.sha256()
    assert "output" not in a.recorded() and "runner" not in a.recorded()


# ---- unknown keys: the message names the dotted key and suggests the near name -------------


@pytest.mark.parametrize(
    ("raw", "key", "near"),
    [
        (minimal(qualty={"enabled": False}), "qualty", "quality"),
        (minimal(normalise={}), "normalise", "normalize"),
        (minimal(normalize={"nfcc": True}), "normalize.nfcc", "nfc"),
        (minimal(runner={"worker": 2}), "runner.worker", "workers"),
        (
            minimal(read={"max_decompresed_bytes": 5}),
            "read.max_decompresed_bytes",
            "max_decompressed_bytes",
        ),
        (
            {
                "sources": [
                    {"kind": "articles", "paths": "a.jsonl", "options": {"txt_field": "body"}}
                ],
                "output": "o",
            },
            "sources[0].options.txt_field",
            "text_field",
        ),
        (
            {"sources": [{"kind": "books", "path": "a.txt"}], "output": "o"},
            "sources[0].path",
            "paths",
        ),
    ],
)
def test_unknown_key_named_with_suggestion(raw, key, near):
    message = error_of(raw)
    assert message.startswith(f"{key}:"), message
    assert "unknown key" in message
    assert f"did you mean {near!r}" in message
    assert "\n" not in message


def test_unknown_key_without_a_near_name_lists_the_known_ones():
    message = error_of(minimal(runner={"zzz": 1}))
    assert message.startswith("runner.zzz:")
    assert "profile" in message and "workers" in message


def test_unknown_source_option_for_a_kind_without_options():
    message = error_of(
        {"sources": [{"kind": "wiki", "paths": "w.xml", "options": {"foo": 1}}], "output": "o"}
    )
    assert message.startswith("sources[0].options.foo:")


def test_unknown_quality_key_is_named():
    message = error_of(minimal(quality={"lenght": {"min_chars": 3}}))
    assert "quality.lenght" in message
    assert "did you mean 'length'" in message
    assert "\n" not in message


def test_quality_settings_are_validated():
    length = validate(minimal(quality={"length": {"min_chars": 3}})).raw["quality"]["length"]
    assert length == {"min_chars": 3, "max_chars": 20_000_000}  # every default recorded
    message = error_of(minimal(quality={"length": {"min_chars": "three"}}))
    assert "quality.length.min_chars" in message


# ---- wrong types and values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        (minimal(normalize={"enabled": "yes"}), "normalize.enabled", "true or false"),
        (minimal(quality={"enabled": "no"}), "quality.enabled", "true or false"),
        (minimal(normalize={"nfc": 1}), "normalize.nfc", "true or false"),
        (minimal(runner={"workers": "2"}), "runner.workers", "integer"),
        (minimal(runner={"workers": 1.5}), "runner.workers", "integer"),
        (minimal(runner={"workers": True}), "runner.workers", "integer"),
        (minimal(seed="0"), "seed", "integer"),
        (minimal(read={"max_record_bytes": "1MB"}), "read.max_record_bytes", "integer"),
        (minimal(read={"on_invalid_utf8": False}), "read.on_invalid_utf8", "string"),
        (minimal(output=3), "output", "string"),
        (minimal(normalize=True), "normalize", "mapping"),
        (minimal(quality=[1]), "quality", "mapping"),
    ],
)
def test_wrong_type_named(raw, key, words):
    message = error_of(raw)
    assert message.startswith(f"{key}:"), message
    assert words in message


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"text_field": 3}, "sources[0].options.text_field"),
        ({"text_field": True}, "sources[0].options.text_field"),
        ({"id_field": ["a"]}, "sources[0].options.id_field"),
    ],
)
def test_wrong_source_option_type_named(options, key):
    message = error_of(
        {"sources": [{"kind": "articles", "paths": "a", "options": options}], "output": "o"}
    )
    assert message.startswith(f"{key}:"), message
    assert "expected a string" in message


def test_wrong_bool_source_option():
    raw = {
        "sources": [{"kind": "books", "paths": "a", "options": {"strip_gutenberg": "no"}}],
        "output": "o",
    }
    assert error_of(raw).startswith("sources[0].options.strip_gutenberg: expected true or false")


@pytest.mark.parametrize(
    ("raw", "key", "value"),
    [
        (minimal(read={"on_invalid_utf8": "drop"}), "read.on_invalid_utf8", "'drop'"),
        (minimal(runner={"profile": "nonesuch"}), "runner.profile", "'nonesuch'"),
        (
            {"sources": [{"kind": "videos", "paths": "a"}], "output": "o"},
            "sources[0].kind",
            "'videos'",
        ),
        (
            {
                "sources": [{"kind": "articles", "paths": "a", "options": {"format": "csv"}}],
                "output": "o",
            },
            "sources[0].options.format",
            "'csv'",
        ),
        (
            {
                "sources": [{"kind": "web", "paths": "a", "options": {"extractor": "bs4"}}],
                "output": "o",
            },
            "sources[0].options.extractor",
            "'bs4'",
        ),
    ],
)
def test_bad_choice_named(raw, key, value):
    message = error_of(raw)
    assert message.startswith(f"{key}: must be one of"), message
    assert value in message


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (minimal(runner={"workers": 0}), "runner.workers"),
        (minimal(read={"max_decompressed_bytes": 0}), "read.max_decompressed_bytes"),
        (minimal(shards={"documents": -1}), "shards.documents"),
    ],
)
def test_below_minimum_named(raw, key):
    assert error_of(raw).startswith(f"{key}: must be at least")


# ---- missing or inconsistent parts ---------------------------------------------------------


def test_missing_output():
    raw = minimal()
    del raw["output"]
    assert error_of(raw).startswith("output: missing")


@pytest.mark.parametrize("sources", [None, [], "books/*.txt"])
def test_missing_sources(sources):
    raw = minimal()
    if sources is None:
        del raw["sources"]
    else:
        raw["sources"] = sources
    assert error_of(raw).startswith("sources:")


@pytest.mark.parametrize(
    "entries",
    [
        [{"kind": "books", "paths": "a"}, {"kind": "books", "paths": "b"}],
        [
            {"name": "x", "kind": "books", "paths": "a"},
            {"name": "x", "kind": "articles", "paths": "b"},
        ],
    ],
)
def test_duplicate_source_names(entries):
    message = error_of({"sources": entries, "output": "o"})
    assert message.startswith("sources[1].name:")
    assert "defined twice" in message


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"kind": "books"}, "sources[0].paths"),
        ({"kind": "books", "paths": []}, "sources[0].paths"),
        ({"kind": "books", "paths": [""]}, "sources[0].paths"),
        ({"kind": "books", "paths": [3]}, "sources[0].paths"),
        ({"name": "my books", "kind": "books", "paths": "a"}, "sources[0].name"),
        ({"kind": "books", "paths": "a", "options": "x"}, "sources[0].options"),
        ("books", "sources[0]"),
    ],
)
def test_bad_source_entry_named(entry, key):
    assert error_of({"sources": [entry], "output": "o"}).startswith(f"{key}:")


def test_top_level_not_a_mapping():
    assert "mapping" in error_of(["sources"])


def test_job_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="job file not found"):
        load(str(tmp_path / "missing.yaml"))
    bad = write(tmp_path / "bad.yaml", "sources:\n  - kind: books\n    paths: [a\noutput: o\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load(str(bad))
    scalar = write(tmp_path / "scalar.yaml", "just a string\n")
    with pytest.raises(ConfigError, match="mapping"):
        load(str(scalar))


# ---- --set overrides -----------------------------------------------------------------------


def test_set_parses_yaml_values():
    cfg = load(
        None,
        [
            "quality.enabled=false",
            "runner.workers=2",
            "normalize.nfc=no",
            "read.on_invalid_utf8=dead_letter",
            "sources.0.paths=[a/*.txt, b/*.txt]",
            "sources.0.options.strip_gutenberg=false",
        ],
        cli_sources=["books=x.txt"],
        output="out",
    )
    assert cfg.raw["quality"]["enabled"] is False
    assert cfg.enabled("quality") is False
    assert cfg.raw["runner"]["workers"] == 2
    assert cfg.raw["normalize"]["nfc"] is False
    assert cfg.raw["read"]["on_invalid_utf8"] == "dead_letter"
    assert cfg.sources[0].paths == ["a/*.txt", "b/*.txt"]
    assert cfg.sources[0].options["strip_gutenberg"] is False


def test_set_list_value_into_a_quality_group():
    cfg = load(None, ["quality.c4.kinds=[web, mail]"], cli_sources=["books=x.txt"], output="out")
    assert cfg.raw["quality"]["c4"]["kinds"] == ["web", "mail"]
    assert cfg.params_of("quality").c4.kinds == ("web", "mail")


def test_set_scalar_path_and_output():
    cfg = load(
        None, ["sources.0.paths=c.txt", "output=over"], cli_sources=["books=x.txt"], output="out"
    )
    assert cfg.sources[0].paths == ["c.txt"]
    assert cfg.output == "over"


def test_set_values_are_validated_like_the_file():
    with pytest.raises(ConfigError, match=r"^runner\.workers: expected an integer"):
        load(None, ["runner.workers=two"], cli_sources=["books=x"], output="o")
    with pytest.raises(ConfigError, match=r"^runner\.workers: expected an integer"):
        load(None, ["runner.workers='2'"], cli_sources=["books=x"], output="o")
    with pytest.raises(
        ConfigError, match=r"^normalize\.nfcc: unknown key \(did you mean 'nfc'\?\)"
    ):
        load(None, ["normalize.nfcc=true"], cli_sources=["books=x"], output="o")


def test_set_over_a_job_file(tmp_path):
    job = write(
        tmp_path / "job.yaml",
        "sources:\n  - {kind: books, paths: a.txt}\nquality: {enabled: true}\noutput: o\n",
    )
    cfg = load(str(job), ["quality.enabled=false", "runner.workers=2"])
    assert cfg.enabled("quality") is False
    assert cfg.raw["runner"]["workers"] == 2


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("quality.enabled", "expected KEY=VALUE"),
        ("quality..enabled=true", "empty part"),
        ("=3", "empty part"),
        ("output.path=x", "is a value, not a section"),
        ("sources.5.paths=x", "not an index"),
        ("sources.first.paths=x", "not an index"),
        ("sources.x=1", "not an index"),
        ("runner.workers=[1, 2", "not valid YAML"),
    ],
)
def test_bad_set(assignment, words):
    raw = {"sources": [{"kind": "books", "paths": "a"}], "output": "o"}
    before = copy.deepcopy(raw)
    with pytest.raises(ConfigError) as info:
        apply_override(raw, assignment)
    message = str(info.value)
    assert message.startswith("--set "), message
    assert words in message
    assert raw == before


# ---- --source on the command line ----------------------------------------------------------


def test_cli_sources_merge_by_kind():
    cfg = load(
        None, cli_sources=["books=a/*.txt", "articles=n/*.jsonl", "books=b/*.txt"], output="o"
    )
    assert [(s.name, s.kind, s.paths) for s in cfg.sources] == [
        ("books", "books", ["a/*.txt", "b/*.txt"]),
        ("articles", "articles", ["n/*.jsonl"]),
    ]
    assert cfg.sources[1].options == {"format": "auto", "text_field": "text", "id_field": "id"}


def test_cli_source_joins_the_job_files_source(tmp_path):
    job = write(
        tmp_path / "job.yaml",
        "sources:\n  - {kind: books, paths: a.txt}\n  - {name: news, kind: articles, paths: n.jsonl}\noutput: o\n",
    )
    cfg = load(str(job), cli_sources=["books=b.txt", "articles=m.jsonl"])
    assert [(s.name, s.paths) for s in cfg.sources] == [
        ("books", ["a.txt", "b.txt"]),
        ("news", ["n.jsonl"]),
        ("articles", ["m.jsonl"]),
    ]


@pytest.mark.parametrize(
    ("spec", "words"),
    [("books", "KIND=PATH"), ("books=", "KIND=PATH"), ("videos=a", "kind must be")],
)
def test_bad_cli_source(spec, words):
    with pytest.raises(ConfigError) as info:
        load(None, cli_sources=[spec], output="o")
    assert str(info.value).startswith(f"--source {spec}:")
    assert words in str(info.value)


# ---- paths that match nothing fail in the plan, before any work ---------------------------


def test_glob_matching_nothing_names_the_pattern(tmp_path):
    from gristmill.pipelines.job import plan_or_explain

    write(tmp_path / "books" / "a.txt", "text")
    pattern = str(tmp_path / "nothing" / "*.txt")
    cfg = load(
        None,
        cli_sources=[f"books={tmp_path}/books/*.txt", f"books={pattern}"],
        output=str(tmp_path / "out"),
    )
    with pytest.raises(ConfigError) as info:
        plan_or_explain(cfg)
    assert pattern in str(info.value)
    assert "matches no file" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_plain_path_names_the_path(tmp_path):
    from gristmill.pipelines.job import plan_or_explain

    missing = str(tmp_path / "missing.jsonl")
    cfg = load(None, cli_sources=[f"articles={missing}"], output=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="missing.jsonl matches no file"):
        plan_or_explain(cfg)


def test_plan_lists_inputs_and_stages(tmp_path):
    from gristmill.pipelines.job import plan_or_explain

    write(tmp_path / "b" / "one.txt", "x" * 10)
    write(tmp_path / "b" / "two.txt", "y" * 20)
    cfg = load(None, [], cli_sources=[f"books={tmp_path}/b/*.txt"], output=str(tmp_path / "o"))
    plan = plan_or_explain(cfg)
    assert [(f.relpath, f.size) for f in plan.files["books"]] == [("one.txt", 10), ("two.txt", 20)]
    assert plan.input_bytes == 30
    assert plan.stages == [
        "read",
        "normalize",
        "langid",
        "quality",
        "dedup_exact",
        "dedup_near",
        "dedup_paragraphs",
        "pii",
    ]
    assert plan.document_shards == 1


# ---- the command line: exit 2, one line on stderr naming the key ---------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--set", "normalize.nfcc=true"], "normalize.nfcc"),
        (["--set", "runner.workers=two"], "runner.workers"),
        (["--set", "quality.enabled"], "--set quality.enabled"),
        (["--workers", "0"], "runner.workers"),
        (["--source", "videos=x"], "--source videos=x"),
    ],
)
def test_cli_config_error_exit_2(tmp_path, capsys, argv, named):
    code = cli.main(
        ["run", "--source", f"books={tmp_path}/*.txt", "--output", str(tmp_path / "o"), *argv]
    )
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gristmill: config error:")
    assert named in lines[0]
    assert out == ""


def test_cli_job_file_error_exit_2(tmp_path, capsys):
    job = write(
        tmp_path / "job.yaml",
        "sources:\n  - {kind: books, paths: a.txt}\noutput: o\nrunner: {workers: many}\n",
    )
    assert cli.main(["run", str(job)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runner.workers" in err[0]


def test_cli_without_sources_exit_2(capsys):
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--source" in err[0]


@pytest.mark.job
def test_cli_glob_matching_nothing_exit_2(tmp_path):
    """The real console script: nothing but one line on stderr, and no release directory."""
    exe = Path(sys.executable).with_name("gristmill")
    pattern = f"{tmp_path}/none/*.jsonl"
    proc = subprocess.run(
        [str(exe), "run", "--source", f"articles={pattern}", "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert pattern in lines[0] and "matches no file" in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "o").exists()


def test_directory_path_is_not_an_input_file(tmp_path):
    from gristmill.pipelines.job import plan_or_explain

    write(tmp_path / "mail" / "one.txt", "a message")
    cfg = load(None, cli_sources=[f"articles={tmp_path}/mail"], output=str(tmp_path / "o"))
    try:
        plan = plan_or_explain(cfg)
    except ConfigError as err:  # refusing the directory with a clear message is fine too
        assert "mail" in str(err)
        return
    assert [f.path for f in plan.files["articles"]] == [f"{tmp_path}/mail/one.txt"]


def test_every_enabled_stage_builds():
    from gristmill.pipelines import graph as corpus
    from gristmill.pipelines import registry
    from gristmill.transforms.stage import StageContext

    cfg = load(None, cli_sources=["books=x.txt"], output="o")
    built = []
    for stage in corpus.enabled_stages(cfg):
        ctx = StageContext(stage=stage.name, output="o", seed=0, kinds={"books": "books"})
        assert stage.build(cfg.params_of(stage.section), ctx) is not None, stage.name
        built.append(stage.name)
    # dedup_parent runs only in a refresh (it needs a parent release: tests/pipelines/test_refresh.py);
    # a stage off by default (decontam) is not built
    on = [s for s in registry.document_stages() if s.enabled(cfg.params_of(s.section))]
    assert built == [s.name for s in on if s.name != "dedup_parent"]
    assert {"normalize", "langid", "quality", "dedup_exact", "dedup_near", "pii"} <= set(built)


def test_files_of_one_source_get_distinct_ids(tmp_path):
    from gristmill.pipelines.job import plan_or_explain
    from gristmill.schemas.records import make_doc_id

    write(tmp_path / "a" / "x.txt", "one")
    write(tmp_path / "b" / "x.txt", "two")
    cfg = load(
        None,
        cli_sources=[f"books={tmp_path}/a/*.txt", f"books={tmp_path}/b/*.txt"],
        output=str(tmp_path / "o"),
    )
    files = plan_or_explain(cfg).files["books"]
    assert len(files) == 2
    ids = {make_doc_id("books", f.relpath, 0) for f in files}
    assert len(ids) == 2, [f.relpath for f in files]


# ---- a recorded config, run again (pipelines/recorded.py) ----------------------------------


def _recorded(sets: list[str]) -> dict:
    """A config as a manifest records it, through JSON like the file."""
    import json

    cfg = load(None, sets, ["books=books/*.txt"], "out")
    return json.loads(json.dumps(cfg.recorded()))


def test_secret_by_reference_is_recorded_by_reference_and_replays(monkeypatch):
    from gristmill.pipelines.recorded import replayable

    monkeypatch.setenv("GM_TEST_SALT", "s3cret-value")
    sets = ["pii.salt=env:GM_TEST_SALT", "dedup.threshold=0.7", "tokenizer.enabled=true"]
    recorded = _recorded(sets)
    salt = recorded["pii"]["salt"]
    assert salt["ref"] == "env:GM_TEST_SALT" and "s3cret-value" not in str(recorded)
    again = load(None, output="elsewhere", base=replayable(recorded))
    assert again.recorded() == recorded
    assert again.sha256() == load(None, sets, ["books=books/*.txt"], "out").sha256()


def test_default_secret_replays_and_a_secret_given_by_value_must_be_given_again(monkeypatch):
    from gristmill.pipelines.recorded import replayable

    assert load(None, output="o", base=replayable(_recorded([]))).recorded() == _recorded([])
    by_value = _recorded(["pii.salt=literal-salt"])
    assert "literal-salt" not in str(by_value)
    with pytest.raises(ConfigError, match=r"^pii.salt: .*fingerprint only.*--set pii.salt=env:"):
        load(None, output="o", base=replayable(by_value))
    monkeypatch.setenv("GM_TEST_SALT", "literal-salt")
    again = load(None, ["pii.salt=env:GM_TEST_SALT"], output="o", base=replayable(by_value))
    assert again.recorded()["pii"]["salt"]["fingerprint"] == by_value["pii"]["salt"]["fingerprint"]


def test_replay_takes_given_sources_over_the_recorded_ones():
    from gristmill.pipelines.recorded import replayable

    base = replayable(_recorded(["quality.enabled=false"]))
    cfg = load(None, cli_sources=["mail=m/*.txt"], output="o", base=base)
    assert [s.name for s in cfg.sources] == ["mail"] and not cfg.enabled("quality")
    cfg = load(None, output="o", base=base)
    assert [s.name for s in cfg.sources] == ["books"]


def test_cli_config_from_a_folder_without_manifest_exit_2(tmp_path, capsys):
    assert cli.main(["run", "--config-from", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config-from" in err[0] and "not a finished release" in err[0]


def test_changes_between_recorded_configs():
    from gristmill.pipelines.recorded import changes, describe

    before = {"sources": [1], "refresh": {"parent": "a"}, "dedup": {"threshold": 0.8}}
    after = {"sources": [2], "refresh": {"parent": "b"}, "dedup": {"threshold": 0.9}, "x": {"y": 1}}
    found = changes(before, after)
    assert found == [
        {"key": "dedup.threshold", "was": 0.8, "now": 0.9},
        {"key": "x.y", "was": None, "now": 1, "new_setting": True},
    ]
    text = describe(found, "the parent P")
    assert "dedup.threshold: 0.8 -> 0.9" in text and "x.y: 1 (a setting the parent P did" in text
    assert "unchanged" in describe([], "the parent P")
