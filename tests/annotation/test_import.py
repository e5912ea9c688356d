"""Importing comparisons: Duet rows in every container, the two public formats, media
zips, atomicity and idempotence."""

import gzip
import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation import actions
from annotation.errors import ImportFailed
from annotation.models import Project, ProjectItem
from arena.models import Comparison, Judge, JudgeKind, Judgment, Output, Prompt, PromptOrigin, Provider, System
from tests.conftest import png_bytes, wav_bytes

from .conftest import jsonl, text_rows

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"


def do_import(project, data: bytes, name="items.jsonl", **options):
    return actions.import_comparisons(project, io.BytesIO(data), name, **options)


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (ProjectItem, Prompt, Output, Comparison, Judgment, System)
    }


ROWS = [
    {
        "id": "q1",
        "prompt": "Name a prime.",
        "category": "math",
        "a": {"system": "model-x", "text": "7"},
        "b": {"system": "model-y", "text": "9"},
        "gold": "a",
        "gold_explanation": "9 = 3 x 3.",
        "judgments": [
            {"annotator": "alice", "verdict": "a", "aspects": {"correctness": {"a": 5, "b": 1}},
             "rationale": "9 is 3²"},
            {"judge": "gpt-judge", "verdict": "a", "confidence": 0.9},
        ],
    },
    {"id": "q2", "prompt": "Say hi.", "a": {"system": "model-x", "text": "hi"}, "b": {"system": "model-y", "text": ""}},
]


# --- Duet rows ------------------------------------------------------------------------------


def test_duet_jsonl_creates_items_outputs_and_imported_judgments(make_project):
    project = make_project()
    summary = do_import(project, jsonl(ROWS))
    assert summary.as_dict() == {
        "rows": 2, "items_created": 2, "items_existing": 0, "check_items": 1, "judgments_created": 2,
        "systems_created": ["model-x", "model-y"], "judges": ["alice", "gpt-judge"], "media_files": 0,
    }  # fmt: skip
    item = ProjectItem.objects.get(external_id="q1")
    assert (item.category, item.check_kind, item.gold_verdict, item.gold_explanation) == ("math", "gold", "a",
                                                                                          "9 = 3 x 3.")  # fmt: skip
    comparison = item.comparison
    assert comparison.origin == "import" and comparison.prompt.origin == PromptOrigin.IMPORT
    assert comparison.prompt.categories == ["math"]
    assert (comparison.output_a.text, comparison.output_b.text) == ("7", "9")
    assert comparison.pair_key == Comparison.make_pair_key(comparison.output_a_id, comparison.output_b_id)
    # Systems an import invents are uploaded-only and stay out of the open arena's matchmaking.
    assert set(System.objects.values_list("provider", "is_active")) == {(Provider.UPLOADED, False)}
    human = Judgment.objects.get(judge__name="alice")
    assert human.judge.kind == JudgeKind.EXTERNAL_HUMAN
    assert (human.aspects, human.rationale) == ({"correctness": {"a": 5, "b": 1}}, "9 is 3²")
    assert human.metadata == {"project": project.pk, "item": item.pk, "imported": True}
    machine = Judgment.objects.get(judge__name="gpt-judge")
    assert (machine.judge.kind, machine.confidence) == (JudgeKind.EXTERNAL_JUDGE, 0.9)
    assert ProjectItem.objects.get(external_id="q2").comparison.output_b.text == ""  # an empty answer is allowed


def test_reimport_creates_nothing_twice_but_adds_new_judgments(make_project):
    project = make_project()
    do_import(project, jsonl(ROWS))
    before = counts()
    again = do_import(project, jsonl(ROWS))
    assert (again.items_created, again.items_existing, again.judgments_created) == (0, 2, 0)
    assert counts() == before
    # a later file with the same ids and one more label adds only that label
    extra = [{**ROWS[1], "judgments": [{"annotator": "bob", "verdict": "a"}]}]
    assert do_import(project, jsonl(extra)).judgments_created == 1
    assert counts() == {**before, "Judgment": before["Judgment"] + 1}


def test_rows_without_ids_are_identified_by_content(make_project):
    project = make_project()
    rows = [{key: value for key, value in row.items() if key != "id"} for row in text_rows(3)]
    assert do_import(project, jsonl(rows + rows[:1])).items_created == 3  # a repeat in the file is one item
    assert do_import(project, jsonl(rows)).items_existing == 3


def test_a_bad_row_writes_nothing_and_names_line_and_field(make_project):
    project = make_project()
    rows = text_rows(9)
    del rows[6]["a"]["text"]
    with pytest.raises(ImportFailed) as error:
        do_import(project, jsonl(rows))
    assert str(error.value) == "line 7: field 'a.text' is missing"
    assert counts() == dict.fromkeys(counts(), 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda row: row.pop("prompt"), "line 3: field 'prompt' is missing"),
        (lambda row: row["b"].update(system="sys-x"), "line 3: field 'b.system' must differ from 'a.system'"),
        (lambda row: row.update(gold="maybe"), "line 3: field 'gold' must be one of a, b, tie, both_bad"),
        (lambda row: row.update(judgments=[{"verdict": "a"}]), "line 3: field 'judgments[0].annotator' or 'judge'"),
        (lambda row: row.update(judgments=[{"judge": "j", "verdict": "a", "confidence": 3}]),
         "line 3: field 'judgments[0].confidence' must be a number from 0 to 1"),
        (lambda row: row.update(id="item-0"), "line 3: field 'id' 'item-0' was already used at line 1"),
        (lambda row: row.update(check="attention", gold=None), "line 3: field 'gold' is missing"),
        (lambda row: row.update(a="text"), "line 3: field 'a' must be an object"),
    ],
)
def test_row_errors_name_the_line_and_field(make_project, change, message):
    project = make_project()
    rows = text_rows(4)
    change(rows[2])
    with pytest.raises(ImportFailed, match=re.escape(message)):
        do_import(project, jsonl(rows))
    assert ProjectItem.objects.count() == 0


def test_a_line_separator_inside_a_string_is_text_not_a_line_break(make_project):
    # given: an answer holding U+2028, which JSON allows raw inside a string (json.dumps
    # with ensure_ascii=False writes it so), and Windows line ends
    project = make_project()
    rows = text_rows(2)
    rows[0]["a"]["text"] = "First line\u2028second line"
    data = "".join(json.dumps(row, ensure_ascii=False) + "\r\n" for row in rows).encode()

    # when
    do_import(project, data)

    # then: two items, the separator kept in the answer
    assert ProjectItem.objects.filter(project=project).count() == 2
    assert Output.objects.filter(text="First line\u2028second line").exists()


def test_invalid_json_and_gold_outside_the_schema(make_project):
    project = make_project(schema={"verdicts": ["a", "b"]})
    with pytest.raises(ImportFailed, match=r"line 2, column 2: not valid JSON"):
        do_import(project, jsonl(text_rows(1)) + b"{oops\n")
    with pytest.raises(ImportFailed, match="line 1: field 'gold' is 'tie', which this project's schema does not offer"):
        do_import(project, jsonl(text_rows(1, gold="tie")))


def test_csv_with_dotted_columns(make_project):
    project = make_project()
    csv_text = (
        "id,prompt,a.system,a.text,b.system,b.text,category,gold,judgments\n"
        'c1,"Two\nlines",m1,yes,m2,no,chat,,"[{""annotator"": ""ann"", ""verdict"": ""b""}]"\n'
        "c2,Second,m1,ok,m2,fine,,a,\n"
    )
    summary = do_import(project, csv_text.encode(), "items.csv")
    assert (summary.items_created, summary.judgments_created, summary.check_items) == (2, 1, 1)
    assert ProjectItem.objects.get(external_id="c1").comparison.prompt.text == "Two\nlines"
    # the record after a quoted two-line cell starts on line 4
    broken = csv_text.replace("c2,Second,m1,ok,m2,fine", "c2,,m1,ok,m2,fine")
    with pytest.raises(ImportFailed, match="line 4: field 'prompt' is missing"):
        do_import(make_project("csv2"), broken.encode(), "items.csv")


def test_parquet_nested_and_flat(make_project, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in row.items() if k != "judgments"} for row in ROWS]), nested)
    summary = do_import(make_project("nested"), nested.getvalue(), "items.parquet")
    assert (summary.items_created, summary.check_items) == (2, 1)

    flat = io.BytesIO()
    pq.write_table(
        pa.table({"id": [1, 2], "prompt": ["p1", "p2"], "a.system": ["m1", "m1"], "a.text": ["x", "y"],
                  "b.system": ["m2", "m2"], "b.text": ["z", None]}),  # fmt: skip
        flat,
    )
    with pytest.raises(ImportFailed, match="row 2: field 'b.text' is missing"):
        do_import(make_project("flat"), flat.getvalue(), "items.parquet")


def test_json_list_and_gzip(make_project):
    project = make_project()
    assert do_import(project, json.dumps(text_rows(2)).encode(), "items.json").items_created == 2
    assert do_import(project, gzip.compress(jsonl(text_rows(2, start=2))), "items.jsonl.gz").items_created == 2
    with pytest.raises(ImportFailed, match="unknown file type"):
        do_import(project, b"", "items.txt")


# --- public formats -------------------------------------------------------------------------


def test_pandalm_sample(make_project):
    project = make_project("PandaLM")
    summary = do_import(project, (DATA / "pandalm-sample.json").read_bytes(), "pandalm-sample.json", fmt="pandalm")
    print(f"\nPandaLM sample import: {summary}")
    assert summary.as_dict() == {
        "rows": 20, "items_created": 20, "items_existing": 0, "check_items": 0, "judgments_created": 60,
        "systems_created": ["bloom-7b", "llama-7b", "opt-7b", "cerebras-gpt-6.7B", "pythia-6.9b"],
        "judges": ["annotator1", "annotator2", "annotator3"], "media_files": 0,
    }  # fmt: skip
    first = ProjectItem.objects.get(external_id="pandalm-0")
    comparison = first.comparison
    assert (comparison.output_a.system.name, comparison.output_b.system.name) == ("bloom-7b", "llama-7b")
    assert first.category == "Grammarly"
    assert comparison.prompt.text.startswith("The sentence you are given might be too wordy")
    assert comparison.prompt.text.endswith("please let me know.")  # instruction, blank line, input
    assert set(Judgment.objects.filter(comparison=comparison).values_list("verdict", flat=True)) == {"b"}  # 2,2,2
    # a mixed row: annotators 1, 1, 0 -> a, a, tie
    mixed = [row for row in json.loads((DATA / "pandalm-sample.json").read_text()) if row["annotator3"] == 0][0]
    item = ProjectItem.objects.get(external_id=f"pandalm-{mixed['idx']}")
    verdicts = dict(Judgment.objects.filter(comparison=item.comparison).values_list("judge__name", "verdict"))
    expected = {1: "a", 2: "b", 0: "tie"}
    assert verdicts == {f"annotator{k}": expected[mixed[f"annotator{k}"]] for k in (1, 2, 3)}
    # responses stored as JSON booleans in the published file are answers like "True"
    assert ProjectItem.objects.get(external_id="pandalm-157").comparison.output_a.text == "True"
    assert ProjectItem.objects.get(external_id="pandalm-466").comparison.prompt.text == "Truthfulness"


def test_hh_rlhf_sample(make_project):
    project = make_project("HH")
    data = (DATA / "hh-rlhf-sample.jsonl").read_bytes()
    summary = do_import(project, data, "hh-rlhf-sample.jsonl", fmt="hh-rlhf", seed=7)
    assert (summary.items_created, summary.judgments_created, summary.judges) == (20, 20, {"hh-rlhf"})
    assert summary.check_items == 0  # the preference is a label, not gold
    first_row = json.loads(data.decode().splitlines()[0])
    item = ProjectItem.objects.order_by("id").first()
    comparison = item.comparison
    assert comparison.prompt.text.startswith("Human: what are some pranks with a pen i can do?")
    assert comparison.prompt.text.endswith("Assistant:")
    chosen_side = item.metadata["chosen_side"]
    chosen = comparison.output_a if chosen_side == "a" else comparison.output_b
    assert first_row["chosen"].endswith(chosen.text)
    assert chosen.text.startswith("No, sorry!")
    judgment = Judgment.objects.get(comparison=comparison)
    assert (judgment.judge.kind, judgment.judge.name, judgment.verdict) == (JudgeKind.EXTERNAL_HUMAN, "hh-rlhf",
                                                                          chosen_side)  # fmt: skip
    sides = [i.metadata["chosen_side"] for i in ProjectItem.objects.filter(project=project).order_by("id")]
    assert {"a", "b"} == set(sides)  # random sides, not all chosen on the left
    # the same seed puts every pair on the same sides again; another seed moves some
    do_import(make_project("HH again"), data, "hh.jsonl", fmt="hh-rlhf", seed=7)
    do_import(make_project("HH other"), data, "hh.jsonl", fmt="hh-rlhf", seed=8)

    def sides_of(name):
        return [i.metadata["chosen_side"] for i in ProjectItem.objects.filter(project__name=name).order_by("id")]

    assert sides_of("HH again") == sides
    assert sides_of("HH other") != sides


def test_hh_rlhf_bad_row(make_project):
    pair = {"chosen": "\n\nHuman: hi\n\nAssistant: yo", "rejected": "\n\nHuman: hi\n\nAssistant: hey"}
    rows = [pair, {"chosen": "x"}]
    with pytest.raises(ImportFailed, match="line 2: field 'rejected' is missing"):
        do_import(make_project(), jsonl(rows), fmt="hh-rlhf")


# --- media ----------------------------------------------------------------------------------


def make_zip(files: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def media_rows(kind="image"):
    extension = "png" if kind == "image" else "wav"
    return [
        {"id": f"m{i}", "prompt": f"{kind} prompt {i}",
         "a": {"system": f"{kind}-x", "media": f"{kind}s/{i}-x.{extension}"},
         "b": {"system": f"{kind}-y", "media": f"./{kind}s/{i}-y.{extension}"}}
        for i in range(2)
    ]  # fmt: skip


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def stored_files(root) -> list[str]:
    return [name for _, _, names in os.walk(root) for name in names]


def test_media_zip_images_and_audio(make_project, media_root):
    images = make_zip({f"images/{i}-{s}.png": png_bytes((i * 80, 20, 200 if s == "x" else 20)) for i in range(2)
                       for s in "xy"})  # fmt: skip
    summary = do_import(make_project("img"), jsonl(media_rows("image")), media_zip=images)
    assert (summary.items_created, summary.media_files) == (2, 4)
    output = ProjectItem.objects.get(external_id="m0").comparison.output_a
    assert (output.kind, output.media_type, output.metadata["width"]) == ("image", "image/png", 32)
    assert output.prompt.modality == "image" and output.system.modality == "image"

    audio = make_zip({f"audios/{i}-{s}.wav": wav_bytes(1.5, 300 + 50 * i) for i in range(2) for s in "xy"})
    do_import(make_project("audio"), jsonl(media_rows("audio")), media_zip=audio)
    output = ProjectItem.objects.get(project__name="audio", external_id="m1").comparison.output_b
    assert output.kind == "audio" and output.metadata["duration"] == 1.5
    assert len(stored_files(media_root)) == 8


@pytest.mark.parametrize("bad_name", ["../evil.png", "images/../../evil.png", "/etc/evil.png", "C:/evil.png"])
def test_media_zip_with_unsafe_paths_is_refused(make_project, media_root, bad_name):
    archive = make_zip({"images/0-x.png": png_bytes(), bad_name: png_bytes()})
    with pytest.raises(ImportFailed, match="has an unsafe path"):
        do_import(make_project(), jsonl(media_rows()), media_zip=archive)
    assert ProjectItem.objects.count() == 0


def test_media_zip_bomb_is_refused(make_project, media_root, settings):
    settings.ANNOTATION_MEDIA_ZIP_MAX_BYTES = 1_000_000
    # 5 MB of zeros compresses to a few kB: the declared size gives it away
    archive = make_zip({"images/0-x.png": png_bytes(), "padding.bin": b"\0" * 5_000_000})
    with pytest.raises(ImportFailed, match="decompresses to 5,0.* bytes; the limit is 1,000,000 bytes"):
        do_import(make_project(), jsonl(media_rows()), media_zip=archive)
    settings.ANNOTATION_MEDIA_ZIP_MAX_BYTES = 10_000_000
    settings.MAX_UPLOAD_BYTES = 1000
    big = make_zip({f"images/{i}-{s}.png": png_bytes(size=(400, 400)) for i in range(2) for s in "xy"})
    with pytest.raises(ImportFailed, match=r"line 1: field 'a.media' 'images/0-x.png' is .* bytes; the limit is 1,000"):
        do_import(make_project("second"), jsonl(media_rows()), media_zip=big)


def test_bad_media_fails_the_whole_import_and_leaves_no_files(make_project, media_root):
    files = {f"images/{i}-{s}.png": png_bytes() for i in range(2) for s in "xy"}
    files["images/1-y.png"] = b"this is not an image"
    with pytest.raises(ImportFailed, match=r"line 2: field 'b.media' is not acceptable media"):
        do_import(make_project(), jsonl(media_rows()), media_zip=make_zip(files))
    missing = make_zip({"images/0-x.png": png_bytes()})
    with pytest.raises(ImportFailed, match=r"line 1: field 'b.media' names './images/0-y.png', which is not in"):
        do_import(make_project("again"), jsonl(media_rows()), media_zip=missing)
    with pytest.raises(ImportFailed, match="no media zip was uploaded"):
        do_import(make_project("third"), jsonl(media_rows()))
    assert stored_files(media_root) == [] and Output.objects.count() == 0


def test_files_written_before_a_late_failure_are_removed(make_project, media_root, monkeypatch):
    # given a failure after the media files were stored (here: while writing judgments)
    files = {f"images/{i}-{s}.png": png_bytes() for i in range(2) for s in "xy"}
    monkeypatch.setattr(actions, "_import_judgments", lambda *args: (_ for _ in ()).throw(RuntimeError("disk")))
    with pytest.raises(RuntimeError):
        do_import(make_project(), jsonl(media_rows()), media_zip=make_zip(files))
    assert stored_files(media_root) == [] and ProjectItem.objects.count() == 0


# --- the command ----------------------------------------------------------------------------


def test_import_command_creates_the_project(tmp_path, capsys):
    path = tmp_path / "pandalm.json"
    path.write_bytes((DATA / "pandalm-sample.json").read_bytes())
    call_command("import_comparisons", str(path), "--project", "Panda", "--format", "pandalm")
    out = capsys.readouterr().out
    assert "Project 'Panda' (new project): 20 rows: 20 items created" in out
    project = Project.objects.get(name="Panda")
    assert project.items.count() == 20
    call_command("import_comparisons", str(path), "--project", "Panda", "--format", "pandalm")
    assert "0 items created, 20 already present" in capsys.readouterr().out


def test_import_command_failure_leaves_nothing(tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = text_rows(3)
    rows[1]["b"] = {"text": "no system"}
    path.write_bytes(jsonl(rows))
    with pytest.raises(CommandError, match="nothing imported: line 2: field 'b.system' is missing"):
        call_command("import_comparisons", str(path), "--project", "Never")
    assert not Project.objects.filter(name="Never").exists()
    assert Judge.objects.count() == 0
