"""Showing a stream in a terminal: System 2's tokens highlighted (colour, or markers)."""
from __future__ import annotations

import os
import sys
from typing import Optional, TextIO

SOURCE_NAMES = {0: "S1", 1: "S2", 2: "S1+S2"}
_HIGHLIGHT = {1: "\033[1;33m", 2: "\033[1;35m"}  # System 2 alone: yellow; combined: magenta
_RESET = "\033[0m"


def use_colour(out: TextIO) -> bool:
    return out.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_stream(stream, *, highlight: bool = True, out: TextIO = sys.stdout):
    """Print chunks as they come; System 2's text in colour, or [[like this]] without colour.
    Returns the Result, or None if interrupted (the stream is cancelled)."""
    colour = use_colour(out)
    open_marker = None
    try:
        for chunk in stream:
            text = chunk.text
            if highlight and chunk.source != 0:
                if colour:
                    text = _HIGHLIGHT[chunk.source] + text + _RESET
                elif open_marker is None:
                    text, open_marker = "[[" + text, chunk.source
            if highlight and not colour and open_marker is not None and chunk.source == 0:
                text, open_marker = "]]" + text, None
            out.write(text)
            out.flush()
        if open_marker is not None:
            out.write("]]")
        out.write("\n")
        out.flush()
    except KeyboardInterrupt:
        stream.close()
        out.write("\n")
        return None
    return stream.result


def print_trace(result, model, out: TextIO = sys.stdout) -> None:
    t = result.trace
    out.write(f"{'#':>4} {'token':>7} {'text':<16} {'src':<6} {'entropy':>8} {'top1':>6} {'margin':>6} S2? mismatch\n")
    for i in range(len(t)):
        text = repr(model.detokenize([int(t.token[i])]))[1:-1][:16]
        out.write(f"{i:>4} {int(t.token[i]):>7} {text:<16} {SOURCE_NAMES[int(t.source[i])]:<6} "
                  f"{t.entropy[i]:>8.3f} {t.top1[i]:>6.3f} {t.margin[i]:>6.3f} "
                  f"{'yes' if t.system2_called[i] else '':<3} {'yes' if t.mismatch[i] else ''}\n")
    if len(t.drafts):
        out.write(f"drafts: {t.drafts}\n")


def legend(colour: bool) -> str:
    if colour:
        return (f"(text in {_HIGHLIGHT[1]}yellow{_RESET} was written by System 2, the large model; "
                f"the rest by System 1, the small model)")
    return "(text in [[double brackets]] was written by System 2, the large model; the rest by System 1)"
