from arena.outputs.rendering import close_open_fence, render_answer, render_markdown
from arena.outputs.rendering import truncated_at_tokens

HOSTILE = (
    "# Title\n\n<script>window.__pwned = 1</script>\n\n"
    '<img src="x" onerror="window.__pwned = 2">\n\n'
    "[click](javascript:window.__pwned=3) and <a href=\"javascript:alert(1)\">x</a>\n\n"
    '<iframe src="https://example.com"></iframe><style>body{display:none}</style>\n\n'
    "**bold** and `code`"
)


def test_markdown_is_rendered():
    html = render_markdown("# Title\n\n- one\n- two\n\n**bold**\n\n```\ncode\n```")
    assert "<h1>Title</h1>" in html and "<li>one</li>" in html and "<strong>bold</strong>" in html
    assert "<pre><code>code" in html


def test_script_event_handlers_and_javascript_links_are_removed():
    html = render_markdown(HOSTILE)
    lowered = html.lower()
    assert "<script" not in lowered
    assert "onerror" not in lowered
    assert "javascript:" not in lowered
    assert "<iframe" not in lowered and "<style" not in lowered
    assert "<strong>bold</strong>" in html and "<h1>Title</h1>" in html


def test_links_get_safe_rel():
    html = render_markdown("[docs](https://example.org)")
    assert 'href="https://example.org"' in html and "noopener" in html


def test_an_unclosed_code_fence_still_renders_as_code():
    # an answer cut at its token limit inside a code block
    html = render_markdown("Here is the loop:\n\n```python\nfor i in range(3):\n    print(i)")
    assert '<pre><code class="language-python">for i in range(3):\n    print(i)' in html
    assert "```" not in html


def test_only_the_fence_left_open_is_closed():
    closed = "```\nfirst\n```\n\nbetween\n\n"
    html = render_markdown(closed + "~~~~\nsecond\n```\nstill code")
    assert html.count("<pre><code>") == 2
    assert "<p>between</p>" in html
    assert "second\n```\nstill code" in html  # a backtick fence does not close a tilde one
    assert close_open_fence(closed) == closed  # balanced text is left as it is


def test_a_cut_answer_is_marked_with_its_length():
    html = render_answer("It stops in the middle of a", truncated_at_tokens=384)
    assert html.endswith('<p class="truncated">… (answer cut at 384 tokens)</p>')
    assert "truncated" not in render_answer("A whole answer.", truncated_at_tokens=None)


def test_a_cut_answer_is_told_by_its_finish_reason():
    assert truncated_at_tokens({"finish_reason": "length", "tokens": 384}) == 384
    assert truncated_at_tokens({"finish_reason": "stop", "tokens": 120}) is None
    assert truncated_at_tokens({"tokens": 384}) is None  # uploaded: nothing says it was cut
    # an OpenAI-compatible server that reports no usage: the limit it was asked for
    assert truncated_at_tokens({"finish_reason": "length", "tokens": None, "sampling": {"max_tokens": 256}}) == 256
