import pytest

from arena.outputs.textstats import markdown_counts, strip_code

ANSWER = """# Plan

Here is **the** plan, with __two__ bold spans.

## Steps
1. Gather data
2. Train
   - on a GPU
   * or a CPU
+ a third kind of bullet

```python
# not a header
- not a list
**not bold**
```

### Done
"""


def test_counts_headers_lists_and_bold_outside_code():
    counts = markdown_counts(ANSWER)

    assert counts["headers"] == 3
    assert (counts["ordered_lists"], counts["unordered_lists"]) == (2, 3)
    assert counts["lists"] == 5
    assert counts["bold"] == 2
    assert counts["chars"] == len(ANSWER)  # length includes the code a reader still reads


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("#hashtag is not a header", "headers", 0),
        ("####### seven is not a header", "headers", 0),
        ("###### six is", "headers", 1),
        ("text # mid-line", "headers", 0),
        ("---\n***", "lists", 0),  # horizontal rules
        ("-no space", "lists", 0),
        ("10. tenth\n2) not this style", "ordered_lists", 1),
        ("**open without close", "bold", 0),
        ("**a** and **b**", "bold", 2),
        ("**across\nlines**", "bold", 0),
        ("use `**kwargs**` here", "bold", 0),  # inline code
        ("~~~\n# inside tilde fence\n~~~\n# after", "headers", 1),
        ("```\n# unclosed fence runs to the end", "headers", 0),
        ("````\n```\n# still code: a shorter fence does not close\n````\n# out", "headers", 1),
        ("", "chars", 0),
    ],
)
def test_edge_cases(text, key, expected):
    assert markdown_counts(text)[key] == expected


def test_plain_text_has_no_style():
    counts = markdown_counts("Paris is the capital of France.")

    assert counts == {"headers": 0, "lists": 0, "unordered_lists": 0, "ordered_lists": 0, "bold": 0, "chars": 31}


def test_none_is_empty():
    assert markdown_counts(None)["chars"] == 0


def test_strip_code_keeps_prose():
    assert strip_code("a\n```\nb\n```\nc `d` e") == "a\nc  e"


# A reader of this answer sees one header, one list item and one bold span: the rest is
# inside a code block, shown as code. Worked by hand:
#   headers: "# Setup" (1); "# install it" is a comment inside the fence.
#   lists:   "- run the script" (1); the three "- " lines inside the fence are code.
#   bold:    "**once**" (1).
#   chars:   len(READER_TEXT), code included.
READER_TEXT = """# Setup

- run the script **once**

```bash
# install it
- a
- b
- c
```
"""


def test_one_counter_counts_what_a_reader_sees():
    counts = markdown_counts(READER_TEXT)

    assert (counts["headers"], counts["lists"], counts["bold"]) == (1, 1, 1)
    assert counts["chars"] == len(READER_TEXT)


@pytest.mark.django_db
def test_the_board_weighs_style_with_the_same_counter():
    # given: an output of the text above, as generation stores it (no token count known)
    from arena.board.snapshots import output_style
    from arena.models import Output, Prompt, System

    system = System.objects.create(name="styled", modality="text", provider="uploaded")
    prompt = Prompt.objects.create(text="How do I set it up?", modality="text")
    output = Output.objects.create(system=system, prompt=prompt, text=READER_TEXT, metadata=markdown_counts(READER_TEXT))

    # when: the board reads its style features
    style = output_style(output)

    # then: the counts a reader sees, length in characters
    assert style == {"length": float(len(READER_TEXT)), "headers": 1.0, "lists": 1.0, "bold": 1.0}
