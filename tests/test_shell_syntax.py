"""The shell lexer on its own: simple commands, words with what the shell may still do to them, redirections,
nested substitutions and the hazards recorded for what it cannot vet. Classification is in test_commands.py.
"""

from __future__ import annotations

from codex_orchestrator.shell_syntax import MAX_NESTING, Lexer, Redir, Word, parts


def lex(src: str) -> Lexer:
    return Lexer(src).lex()


def commands(src: str) -> list[list[str]]:
    """The words of each simple command, as text."""
    return [[w.text for w in words] for words, _ in parts(lex(src).tokens)]


def only_word(src: str) -> Word:
    ((words, _),) = parts(lex(src).tokens)
    (word,) = words
    return word


def test_separators_split_simple_commands() -> None:
    expected = [["a", "1"], ["b", "2"], ["c"], ["d"], ["e"], ["f"], ["g"]]
    assert commands("a 1; b 2 && c || d | e & f\ng") == expected
    assert commands("  ;; ") == []
    assert commands("ls # a comment; rm -rf /") == [["ls"]]


def test_quotes_are_removed_and_remembered() -> None:
    assert commands("""echo 'a b' "c d" e\\ f""") == [["echo", "a b", "c d", "e f"]]
    assert only_word("'ls'").quoted
    assert not only_word("ls").quoted
    assert commands("echo a\\\nb") == [["echo", "ab"]]  # a line continuation joins the word


def test_word_flags_say_what_the_shell_may_do() -> None:
    plain = only_word("file.txt")
    assert plain.static and not plain.may_be_option

    glob = only_word("*.py")
    assert glob.globbed and not glob.static and glob.may_be_option

    unquoted = only_word("a$X")
    assert unquoted.expands and unquoted.splits and not unquoted.lead_dynamic

    quoted = only_word('"$X"')
    assert quoted.expands and not quoted.splits and quoted.lead_dynamic

    assert only_word("{a,b}").globbed  # brace expansion
    assert only_word("{a}").static  # no `,` or `..`: no expansion

    assign = only_word("NAME=$v")
    assert assign.literal_len == len("NAME=")


def test_redirections_carry_descriptor_and_target() -> None:
    ((words, redirs),) = parts(lex("cmd 2>err <in >>out").tokens)
    assert [w.text for w in words] == ["cmd"]
    assert [(r, t.text if t else None) for r, t in redirs] == [
        (Redir(">", "2"), "err"),
        (Redir("<", ""), "in"),
        (Redir(">>", ""), "out"),
    ]
    # Quoted digits are an argument, not a descriptor; a redirection at the end has no target.
    ((_, redirs),) = parts(lex("cmd '2'>x >").tokens)
    assert redirs == [(Redir(">", ""), Word(text="x", literal_len=1)), (Redir(">", ""), None)]


def test_substitutions_are_lexed_by_nested_lexers() -> None:
    lexer = lex("echo $(rm -rf x) `touch y` <(cat z)")
    assert [[[w.text for w in ws] for ws, _ in parts(sub.tokens)] for sub in lexer.subs] == [
        [["rm", "-rf", "x"]],
        [["touch", "y"]],
        [["cat", "z"]],
    ]
    assert all(sub.depth == 1 for sub in lexer.subs)
    assert commands("echo $(rm -rf x) `touch y` <(cat z)") == [["echo", "$(...)", "`...`", "<(...)"]]
    assert len(lexer.hazards) == 3


def test_unparsable_input_is_incomplete_with_a_reason() -> None:
    for src in ("echo 'open", 'echo "open', "echo $(open", "echo `open", "echo ${open", "echo \\"):
        lexer = lex(src)
        assert not lexer.complete, src
        assert any(h.startswith("cannot parse the command line") for h in lexer.hazards), src


def test_substitutions_deeper_than_the_limit_stop_the_lexer() -> None:
    def nest(levels: int) -> str:
        return "ls" if levels == 0 else f"echo $({nest(levels - 1)})"

    assert lex(nest(MAX_NESTING)).complete
    deep = lex(nest(MAX_NESTING + 1))
    assert not deep.complete
    assert "cannot parse the command line: substitutions nested too deeply" in _all_hazards(deep)


def _all_hazards(lexer: Lexer) -> list[str]:
    return lexer.hazards + [h for sub in lexer.subs for h in _all_hazards(sub)]


def test_literal_words_cannot_expand_in_any_shell() -> None:
    for src in (
        "-delete",
        "'-{a,b}'",
        '"*.py"',
        "-dele\\?e",
        "a\\{b,c\\}",
        "[",
        "{}",
        "x]",
        "a}",
        "$",
        "a=b",
    ):
        assert only_word(src).literal, src
    for src in (
        "-{delete,x}",
        "-dele?e",
        "-fprin[t]",
        "in*",
        "~",
        "~/x",
        "a{b}",
        "-{a..c}",
        "$X",
        '"$X"',
        "$'-v'",
    ):
        assert not only_word(src).literal, src


def test_operand_only_words_never_become_options() -> None:
    # Each expansion keeps the literal first character, which is not `-`: several operands at most.
    for src in ("src/*", "a{b,c}", "x?", "a[bc]", "a~", '"a$X"', "a/'$'*"):
        word = only_word(src)
        assert word.operand_only and not word.may_be_option, src
    # A leading expansion, a literal leading `-` or word splitting (which starts new words anywhere) can.
    for src in ("*", "*.py", "{-a,b}", "-{a,b}", "-x*", "~", "$X", "a$X", '"$X"', "`id`", "$'-v'", "[a]"):
        word = only_word(src)
        assert not word.operand_only and word.may_be_option, src
