"""Render a send command's message in the sandbox, with links tagged and a footer.

Templates come from marketers over a topic, so they are untrusted: the sandbox keeps
them away from Python internals, and any failure while rendering becomes a
``TemplateFailed`` (a ``PermanentError``) that fails this one command cleanly.
"""

from __future__ import annotations

import gettext
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError, Undefined, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from nudge.delivery.brand import Brand
from nudge.delivery.defaults import default_message
from nudge.delivery.header_text import one_line
from nudge.delivery.i18n import (
    FALLBACK,
    format_day,
    format_money,
    resolve_locale,
    shipped_languages,
    translations,
)
from nudge.delivery.inline import inline_css
from nudge.delivery.links import add_params, tag_html_links
from nudge.delivery.tracking import TrackingLinks
from nudge.errors import PermanentError
from nudge.models.message import Message
from nudge.templating import make_environment

_CACHE_LIMIT = 512
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_ENGLISH = gettext.NullTranslations()
#: Where a context has no ``brand`` (checks, tests): the colours of the built-ins.
DEFAULT_BRAND = Brand(name="")


class TemplateFailed(PermanentError):
    reason = "template_error"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Footer:
    """Who sent this and how to stop it: required in every marketing email."""

    sender_name: str
    postal_address: str
    unsubscribe_url: str | None

    def as_html(self, words: gettext.NullTranslations = _ENGLISH) -> str:
        esc = html.escape
        _ = words.gettext
        lines = [
            esc(_("You are receiving this email from %(sender)s."))
            % {"sender": esc(self.sender_name)},
            esc(self.postal_address),
        ]
        if self.unsubscribe_url:
            link = esc(self.unsubscribe_url, quote=True)
            lines.append(
                esc(_("%(link_start)sUnsubscribe%(link_end)s from these emails."))
                % {"link_start": f'<a href="{link}" style="color:#52525b">', "link_end": "</a>"}
            )
        return (
            '\n<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
            '<tr><td align="center" style="padding:16px 24px;font-family:Helvetica,Arial,'
            'sans-serif;font-size:12px;line-height:1.5;color:#52525b">'
            + "<br>\n".join(lines)
            + "</td></tr></table>\n"
        )

    def as_text(self, words: gettext.NullTranslations = _ENGLISH) -> str:
        _ = words.gettext
        lines = [
            _("You are receiving this email from %(sender)s.") % {"sender": self.sender_name},
            self.postal_address,
        ]
        if self.unsubscribe_url:
            lines.append(_("Unsubscribe: %(url)s") % {"url": self.unsubscribe_url})
        return "\n\n--\n" + "\n".join(lines) + "\n"


def _locale(context: Context) -> str:
    return resolve_locale(context.get("locale"), FALLBACK)


@pass_context
def _money(context: Context, value: Any, currency: str | None = "") -> str:
    return format_money(value, currency, _locale(context))


@pass_context
def _date(context: Context, value: Any, format: str = "long") -> str:
    return format_day(value, format, _locale(context))


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(_locale(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(_locale(context)).ngettext(singular, plural, n)


@pass_context
def _utm(context: Context, url: Any) -> str:
    params = context.get("utm_params") or {}
    return add_params(str(url), params) if url else ""


def _environment(*, autoescape: bool, undefined: type[Undefined]) -> ImmutableSandboxedEnvironment:
    env = make_environment()
    # The shared factory autoescapes everything; subject and text are not HTML, and
    # escaping them would put "&amp;" into a customer's inbox.
    env.autoescape = autoescape
    env.undefined = undefined
    env.filters["money"] = _money
    env.filters["utm"] = _utm
    env.filters["date"] = _date
    # New-style gettext: ``_("Hi %(name)s", name=...)`` escapes ``name`` in HTML, and
    # each call looks up the language of the message being rendered.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = env.globals["gettext"]  # one call less than the extension's alias
    return env


class Renderer:
    def __init__(self, *, undefined: type[Undefined] = Undefined) -> None:
        """``undefined`` is for checks (``nudge.template_check``); sending keeps the default."""
        self._html_env = _environment(autoescape=True, undefined=undefined)
        self._text_env = _environment(autoescape=False, undefined=undefined)
        self._cache: dict[tuple[bool, str], Template] = {}
        for language in shipped_languages():  # read the catalogues now, not mid-send
            translations(language)

    def environment(self, *, is_html: bool) -> ImmutableSandboxedEnvironment:
        """The sandbox a field is rendered in: ``money`` and ``utm`` filters included."""
        return self._html_env if is_html else self._text_env

    def _template(self, source: str, *, is_html: bool) -> Template:
        key = (is_html, source)
        template = self._cache.get(key)
        if template is None:
            if len(self._cache) >= _CACHE_LIMIT:
                # Trigger edits retire old sources; a full reset is simpler than an LRU
                # and recompiling a few hundred templates costs milliseconds.
                self._cache.clear()
            template = self.environment(is_html=is_html).from_string(source)
            self._cache[key] = template
        return template

    def render_field(
        self, name: str, source: str, context: Mapping[str, Any], *, is_html: bool
    ) -> str:
        """One template; any failure is a ``TemplateFailed`` whose ``__cause__`` is the
        original error (``SecurityError``, ``UndefinedError``, ``TypeError``, ...)."""
        try:
            return self._template(source, is_html=is_html).render(context)
        except SecurityError as exc:
            raise TemplateFailed(f"template_error: {name}: blocked by the sandbox: {exc}") from exc
        except TemplateError as exc:
            raise TemplateFailed(f"template_error: {name}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a template can raise anything (1/0, bad filter args)
            raise TemplateFailed(f"template_error: {name}: {type(exc).__name__}: {exc}") from exc

    def render(
        self,
        message: Message | None,
        *,
        kind: str,
        step: int,
        context: Mapping[str, Any],
        utm: Mapping[str, str],
        footer: Footer,
        tracking: TrackingLinks | None = None,
    ) -> Rendered:
        """Subject, HTML and text; any part the trigger leaves empty comes from defaults.

        With ``tracking``, the HTML's links become click redirects (after UTM tagging,
        so the target keeps its UTM) and an open pixel goes after the footer.

        The HTML's ``<style>`` block is inlined; the footer is in the ``locale`` of the
        context (English without one), as are ``money``, ``date`` and ``{% trans %}``.
        """
        locale = resolve_locale(context.get("locale"), FALLBACK)
        context = {"brand": DEFAULT_BRAND, **context, "locale": locale}
        words = translations(locale)
        fallback = default_message(kind, step)
        chosen = message or Message()
        subject_src = chosen.subject or fallback.subject or ""
        html_src = chosen.html or fallback.html or ""
        text_src = chosen.text or fallback.text or ""

        # The subject is a header: a newline from a shopper's name must not end it.
        subject = one_line(self.render_field("subject", subject_src, context, is_html=False))
        context = {**context, "subject": subject}
        body_html = self.render_field("html", html_src, context, is_html=True)
        if chosen.html:  # the built-in HTML comes inlined; a flow's own is inlined here
            body_html = inline_css(body_html)
        body_text = self.render_field("text", text_src, context, is_html=False)
        # A built-in preheader sums up the built-in body: a flow's own HTML without a
        # preheader of its own gets none rather than one about another text.
        preheader_src = chosen.preheader or (None if chosen.html else fallback.preheader)
        if preheader_src:
            preheader = self.render_field("preheader", preheader_src, context, is_html=False)
            body_html = with_preheader(body_html, one_line(preheader))

        skip = (footer.unsubscribe_url,) if footer.unsubscribe_url else ()
        wrap = tracking.click_href if tracking is not None and tracking.clicks else None
        body_html = tag_html_links(body_html, utm, skip_prefixes=skip, wrap=wrap)
        # The footer goes in after tagging: the unsubscribe link must stay as signed.
        footer_html = footer.as_html(words)
        if tracking is not None and tracking.opens:
            footer_html += tracking.pixel_html()
        matches = list(_BODY_END.finditer(body_html))
        if matches:
            at = matches[-1].start()
            body_html = body_html[:at] + footer_html + body_html[at:]
        else:
            body_html += footer_html
        return Rendered(
            subject=subject, html=body_html, text=body_text.rstrip() + footer.as_text(words)
        )


_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
#: Mail clients show the first text of a message beside its subject in the inbox. The
#: preheader is that text, hidden in the message itself; the padding of zero-width
#: joiners keeps the body's own first words from trailing after it.
_PREHEADER = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
    'opacity:0;overflow:hidden;mso-hide:all">{text}' + "&#847;&zwnj;&nbsp;" * 40 + "</div>"
)


def with_preheader(body_html: str, text: str) -> str:
    block = _PREHEADER.format(text=html.escape(text))
    match = _BODY_START.search(body_html)
    if match is None:
        return block + body_html
    return body_html[: match.end()] + block + body_html[match.end() :]
