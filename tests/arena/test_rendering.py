from arena.rendering import render_markdown

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
