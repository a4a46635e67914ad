"""Gradio glue shared by the tabs: errors become messages in the page, the app stays up."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

__all__ = ["user_errors", "warn"]

log = logging.getLogger("gramviz.app")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a callback so that bad input shows as a `gr.Error` with its message (a ValueError,
    which `gramviz.MediaError`, `ModelLoadError` and `GalleryError` are, a PermissionError, an
    OSError) and anything unexpected as a short internal-error message (logged with its traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, PermissionError, OSError) as e:
            raise gr.Error(str(e), title="Cannot do that", print_exception=False) from None
        except Exception as e:  # a bug: say so briefly, keep serving
            log.exception("callback %s failed", fn.__name__)
            raise gr.Error(f"internal error ({type(e).__name__}: {e}); the app keeps running",
                           title="Internal error", print_exception=False) from None

    return wrapper


def warn(messages: list[str]) -> None:
    """Show each message as a warning toast in the page (a no-op outside a request)."""
    for message in messages:
        gr.Warning(message, duration=8)
