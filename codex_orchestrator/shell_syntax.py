"""A conservative POSIX shell lexer: splits a command line into simple commands, words and redirections, and
records every construct it cannot vet (substitutions, here-documents, unparsable input) as a hazard.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

# How many times `bash -c "..."`, `$(...)` or `eval` are unwrapped; deeper code is treated as opaque.
# One limit for both layers: the lexer counts substitutions, the classifier (commands.py) counts the rest.
MAX_NESTING = 4


@dataclass
class Word:
    """One shell word as written, with what the shell may still do to it (expand, split, glob)."""

    text: str = ""  # after quote removal; expansions are kept as written
    quoted: bool = False  # some part was quoted or escaped, so it is never a keyword
    literal_len: int = 0  # leading unquoted literal characters (an assignment needs its name there)
    expands: bool = False  # the value depends on an expansion or substitution
    splits: bool = False  # an unquoted expansion: the shell may split it into several words
    globbed: bool = False  # an unquoted glob or brace: the shell may replace it with other words
    lead_dynamic: bool = False  # the first character comes from an expansion or a glob
    brace: bool = False  # an unquoted `{`: brace expansion when the word also holds `,` or `..`
    lead_brace: bool = False
    special: bool = False  # an unquoted `{`, `*`, `?`, `[` or `~`: the shell may expand it (in some shell)

    @property
    def static(self) -> bool:
        """No parameter, command or glob expansion: the text is known up to brace and tilde expansion."""
        return not (self.expands or self.globbed)

    @property
    def literal(self) -> bool:
        """The shell passes exactly ``text`` as one word, in every shell: no unquoted expansion character at
        all (``{ * ? [ ~ $`` and backquotes), whatever the characters around it."""
        return not (self.expands or self.globbed or self.special)

    @property
    def operand_only(self) -> bool:
        """Whatever the shell makes of it, every resulting word starts with this word's first character, which
        is literal and not ``-``: it may become several operands, never an option. Word splitting (an
        unquoted ``$X``) can start a new word anywhere, so a word that splits is never operand-only."""
        return bool(self.text) and not (self.splits or self.lead_dynamic) and self.text[0] != "-"

    @property
    def may_be_option(self) -> bool:
        """The shell could turn this word into one that starts with ``-`` (``*``, ``$X``, ``-{a,b}``), or split
        it into several words."""
        return not self.literal and not self.operand_only


@dataclass(frozen=True)
class Redir:
    """A redirection operator (``2>`` is ``Redir(">", "2")``); its target is the word after it."""

    op: str
    fd: str  # the explicit descriptor before the operator, "" when none


_Token: TypeAlias = Word | Redir | str  # a str is a separator
_SEPARATORS = (";;&", "&&", "||", "|&", ";;", ";&", ";", "|", "&", "\n")
_REDIRECTIONS = ("<<<", "<<-", "&>>", "<<", "<>", "<&", ">>", ">|", ">&", "&>", "<", ">")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
# Unquoted, these may expand: globs, brace expansion (bash, zsh, ksh) and tilde expansion.
_SPECIAL = frozenset("*?[{~")
_SIMPLE_BRACED = re.compile(r"#?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])")


class Lexer:
    """Splits a command line into words, redirections and separators, recording every hazard on the way.

    Substitutions (``$(...)``, backquotes, ``<(...)``) are lexed by nested lexers kept in ``subs`` so that the
    commands inside them are classified too. A nested lexer stops at its unmatched ``)``.
    """

    def __init__(self, src: str, pos: int = 0, depth: int = 0, nested: bool = False) -> None:
        self.src, self.pos, self.depth, self.nested = src, pos, depth, nested
        self.tokens: list[_Token] = []
        self.hazards: list[str] = []
        self.subs: list[Lexer] = []
        self.word: Word | None = None
        self.complete = True
        self.parens = 0

    def lex(self) -> Lexer:
        """Lex from ``pos`` to the end (a nested lexer: to its unmatched ``)``) and return ``self``."""
        src = self.src
        while self.pos < len(src) and self.complete:
            c = src[self.pos]
            if c in " \t":
                self._end_word()
                self.pos += 1
            elif c == "#" and self.word is None:
                newline = src.find("\n", self.pos)
                self.pos = len(src) if newline < 0 else newline
            elif c == "\\":
                self._backslash()
            elif c == "'":
                self._single_quote()
            elif c == '"':
                self._double_quote()
            elif c == "$":
                self._dollar(quoted=False)
            elif c == "`":
                self._backquote(quoted=False)
            elif c == ")" and self.nested and self.parens == 0:
                self._end_word()
                return self  # the caller resumes after this parenthesis
            elif c in "()":
                self.parens = max(0, self.parens + (1 if c == "(" else -1))
                self._hazard("parentheses: a subshell, function, arithmetic or case pattern")
                self._end_word()
                self.pos += 1
            elif src.startswith(_REDIRECTIONS, self.pos):
                self._redirection()
            elif c in ";&|\n":
                self._end_word()
                op = next(s for s in _SEPARATORS if src.startswith(s, self.pos))
                self.tokens.append(op)
                self.pos += len(op)
            else:
                self._append(c, quoted=False)
                self.pos += 1
        self._end_word()
        return self

    def _current(self) -> Word:
        if self.word is None:
            self.word = Word()
        return self.word

    def _end_word(self) -> None:
        word = self.word
        if word is not None:
            if word.text in ("[", "{}") and word.literal_len == len(word.text):
                # A lone `[` is no bracket expression and `{}` no brace expansion: both are passed as they are
                # (the `[` command, find's `{}`).
                word.special = word.globbed = word.lead_dynamic = word.brace = False
            if word.brace and ("," in word.text or ".." in word.text):
                word.globbed = True
                word.lead_dynamic = word.lead_dynamic or word.lead_brace
            self.tokens.append(word)
            self.word = None

    def _append(self, text: str, *, quoted: bool) -> None:
        word = self._current()
        if quoted:
            word.quoted = True
        else:
            if word.literal_len == len(word.text):
                word.literal_len += len(text)
            if text in _SPECIAL:
                word.special = True
                word.lead_dynamic = word.lead_dynamic or not word.text
            if text in ("*", "?", "["):
                word.globbed = True
            elif text == "{":
                word.brace = True
                word.lead_brace = word.lead_brace or not word.text
        word.text += text

    def _expansion(self, text: str, *, quoted: bool) -> None:
        word = self._current()
        word.lead_dynamic = word.lead_dynamic or not word.text
        word.expands = True
        word.splits = word.splits or not quoted
        word.text += text

    def _hazard(self, reason: str) -> None:
        self.hazards.append(reason)

    def _incomplete(self, what: str) -> None:
        self.complete = False
        self._hazard(f"cannot parse the command line: {what}")

    def _backslash(self) -> None:
        escaped = self.src[self.pos + 1 : self.pos + 2]
        if not escaped:
            self._incomplete("a trailing backslash")
            return
        if escaped != "\n":  # a backslash-newline is a line continuation
            self._append(escaped, quoted=True)
        self.pos += 2

    def _single_quote(self) -> None:
        end = self.src.find("'", self.pos + 1)
        if end < 0:
            self._incomplete("an unterminated single quote")
            return
        self._append(self.src[self.pos + 1 : end], quoted=True)
        self.pos = end + 1

    def _double_quote(self) -> None:
        src = self.src
        self._current().quoted = True
        i = self.pos + 1
        while i < len(src) and self.complete:
            c = src[i]
            if c == '"':
                self.pos = i + 1
                return
            if c == "\\" and src[i + 1 : i + 2] in ("$", "`", '"', "\\", "\n"):
                if src[i + 1] != "\n":
                    self._append(src[i + 1], quoted=True)
                i += 2
            elif c in "$`":
                self.pos = i
                if c == "$":
                    self._dollar(quoted=True)
                else:
                    self._backquote(quoted=True)
                i = self.pos
            else:
                self._append(c, quoted=True)
                i += 1
        if self.complete:
            self._incomplete("an unterminated double quote")

    def _dollar(self, *, quoted: bool) -> None:
        src, i = self.src, self.pos
        after = src[i + 1 : i + 2]
        if after == "(":
            self._expansion("$(...)", quoted=quoted)
            self._nested(i + 2, "$(...) command substitution")
        elif after == "[":
            self._hazard("$[...] arithmetic can run command substitutions")
            self._expansion("$[", quoted=quoted)
            self.pos = i + 2
        elif after == "{":
            end = src.find("}", i + 2)
            if end < 0:
                self._incomplete("an unterminated ${")
                return
            if not _SIMPLE_BRACED.fullmatch(src[i + 2 : end]):
                self._hazard("${...} with operators, indirection or a subscript is not vetted")
            self._expansion(src[i : end + 1], quoted=quoted)
            self.pos = end + 1
        elif after == "'" and not quoted:  # $'...': the value comes from escapes, so treat it as unknown
            j = i + 2
            while j < len(src) and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            if j >= len(src):
                self._incomplete("an unterminated $'...'")
                return
            self._expansion(src[i : j + 1], quoted=True)
            self.pos = j + 1
        elif after == '"' and not quoted:  # $"...": a translated string, its value is unknown
            self._expansion("", quoted=True)
            self.pos = i + 1
        elif match := _PARAM.match(src, i + 1):
            self._expansion("$" + match.group(), quoted=quoted)
            self.pos = match.end()
        else:
            self._append("$", quoted=quoted)
            self.pos = i + 1

    def _backquote(self, *, quoted: bool) -> None:
        src, i = self.src, self.pos + 1
        body: list[str] = []
        while i < len(src) and src[i] != "`":
            if src[i] == "\\" and src[i + 1 : i + 2] in ("$", "`", "\\"):
                i += 1
            body.append(src[i])
            i += 1
        if i >= len(src):
            self._incomplete("an unterminated backquote")
            return
        self._hazard("`...` command substitution")
        self._expansion("`...`", quoted=quoted)
        self._sub(Lexer("".join(body), depth=self.depth + 1))
        self.pos = i + 1

    def _nested(self, start: int, what: str) -> None:
        self._hazard(what)
        sub = self._sub(Lexer(self.src, start, self.depth + 1, nested=True))
        if sub is None:
            return
        if not sub.complete or sub.pos >= len(self.src):
            self._incomplete(f"an unterminated {what}")
            return
        self.pos = sub.pos + 1

    def _sub(self, lexer: Lexer) -> Lexer | None:
        if lexer.depth > MAX_NESTING:
            self._incomplete("substitutions nested too deeply")
            return None
        self.subs.append(lexer.lex())
        return lexer

    def _redirection(self) -> None:
        src, i = self.src, self.pos
        if src[i] in "<>" and src[i + 1 : i + 2] == "(":
            self._expansion("<(...)", quoted=True)
            self._nested(i + 2, "<(...) or >(...) process substitution")
            return
        op = next(o for o in _REDIRECTIONS if src.startswith(o, i))
        word = self.word
        fd = ""
        unquoted_digits = (
            word and word.text.isascii() and word.text.isdigit() and word.literal_len == len(word.text)
        )
        if word and unquoted_digits and not op.startswith("&"):  # `2>file`: the digits name the descriptor
            fd, self.word = word.text, None
        self._end_word()
        if op in ("<<", "<<-"):
            self._hazard("here-document: its body is not vetted")
        self.tokens.append(Redir(op, fd))
        self.pos = i + len(op)


def parts(tokens: list[_Token]) -> Iterator[tuple[list[Word], list[tuple[Redir, Word | None]]]]:
    """Simple commands: their words and their redirections, each with its target word."""
    words: list[Word] = []
    redirs: list[tuple[Redir, Word | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(token, str):
            if words or redirs:
                yield words, redirs
            words, redirs = [], []
        elif isinstance(token, Redir):
            target = tokens[i + 1] if i + 1 < len(tokens) else None
            if isinstance(target, Word):
                redirs.append((token, target))
                i += 1
            else:
                redirs.append((token, None))
        else:
            words.append(token)
        i += 1
    if words or redirs:
        yield words, redirs
