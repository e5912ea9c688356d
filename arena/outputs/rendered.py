"""What serving and counting a text output derive from its text (the sanitised HTML a
voter is sent, the markdown style features its battles carry), made once per output for
every process and host and kept on its row (`Output.rendered`).

Sanitising markdown is the costliest step of serving a comparison (about 1 ms an output,
more for long answers), and every web process used to render every output it served for
itself: with 8 processes over two hosts, 8 renders an output. Each process still keeps
its own copies (arena.hotcache); a miss now costs the row's read, not a render, except
for the first process to need an output, which renders it and writes it back.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

from arena.models import Output
from arena.outputs.rendering import render_answer, truncated_at_tokens
from arena.outputs.textstats import style_features

logger = logging.getLogger(__name__)


def derive(output: Output) -> dict:
    """The HTML and style features of a text output, from its text and metadata."""
    return {
        "html": render_answer(output.text, truncated_at_tokens(output.metadata)),
        "style": style_features(output.text, output.metadata.get("tokens")),
    }


def rendered(output: Output) -> dict:
    """`derive(output)`, from the row when a process made it before, else made now and
    written back (a plain UPDATE: no signal, so no process forgets anything for it)."""
    if output.rendered:
        return output.rendered
    value = derive(output)
    output.rendered = value
    if output.pk is not None:
        try:
            Output.objects.filter(pk=output.pk, rendered__isnull=True).update(rendered=value)
        except DatabaseError:  # a busy SQLite file, say: the next process renders again
            logger.warning("could not keep the rendering of output %s", output.pk, exc_info=True)
    return value
