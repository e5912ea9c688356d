"""Model outputs and prompts are untrusted: render markdown, then sanitise the HTML.

The markdown library passes raw HTML through, so every rendering goes through nh3
(the Ammonia sanitiser) with an allow-list: no script, no event-handler attributes, no
`javascript:` or `data:` links. The page's Content-Security-Policy is a second fence.
"""

import re

import markdown
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul", "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "span": {"class"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

# An opening fence as Python-Markdown's fenced_code reads one: three or more backticks or
# tildes at the start of a line, then an optional language or {attributes}.
_OPENING_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ ]*(\{[^\n]*\}|\.?[\w#.+-]*)[ ]*$")


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def close_open_fence(text: str) -> str:
    """The text with a code fence left open at its end closed.

    A model answer cut at its token limit often stops inside a code block; unclosed, the
    fence and the code render as one paragraph of plain text.
    """
    fence = None
    for line in text.splitlines():
        if fence is None:
            opening = _OPENING_FENCE.match(line)
            fence = opening["fence"] if opening else None
        elif line.rstrip(" ") == fence:  # Python-Markdown closes with the same fence only
            fence = None
    return text if fence is None else text.rstrip("\n") + "\n" + fence + "\n"


def render_markdown(text: str) -> str:
    html = markdown.markdown(close_open_fence(text or ""), extensions=["fenced_code", "tables", "sane_lists"])
    return sanitize_html(html)


def truncated_at_tokens(metadata: dict) -> int | None:
    """The length an answer was cut at, when its generation stopped at the token limit
    rather than at the end of the answer; None otherwise.

    Text providers record why generation stopped as ``finish_reason`` ("length" from both
    transformers and OpenAI-compatible servers) with the answer's ``tokens``; the page
    marks such an answer so a voter does not read a cut sentence as the model's ending.
    """
    if metadata.get("finish_reason") != "length":
        return None
    sampling = metadata.get("sampling") or {}
    tokens = metadata.get("tokens") or sampling.get("max_new_tokens") or sampling.get("max_tokens")
    return int(tokens) if tokens else None


def render_answer(text: str, truncated_at_tokens: int | None = None) -> str:
    """An output's HTML, marked when generation stopped at its token limit rather than at
    the end of the answer (`truncated_at_tokens`)."""
    html = render_markdown(text)
    if truncated_at_tokens:
        html += f'\n<p class="truncated">… (answer cut at {int(truncated_at_tokens)} tokens)</p>'
    return html
