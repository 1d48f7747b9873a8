"""The git handler: which git invocations only read, and run with the overrides of git_env.py.

Read-only means: no option points git at another repository or config (``-C``, ``--git-dir``, ``-c``, ...),
a known subcommand (an alias is not: it can run anything), and no option that writes a file or runs a program.
Subcommands that read work-tree files or show patches reach drivers no config override can name (clean
filters, textconv, ``diff.external``): ``status``, ``diff``, ``blame`` and patches (``log -p``, ``show``,
``-S``/``-G``) without ``--no-textconv`` are read-only only in the read sandbox (``Findings.add_configured``),
which confines whatever those drivers run to reading. Asking for a driver explicitly (``--ext-diff``,
``--textconv``) still needs ``run``.
"""

from __future__ import annotations

import re

from codex_orchestrator.commands.args import guard, has_long, has_short, operands
from codex_orchestrator.commands.findings import EDIT, NETWORK, RUN, Findings, names
from codex_orchestrator.commands.git_env import GIT_NEUTRAL_ENV
from codex_orchestrator.shell_syntax import Word

_GIT_GLOBAL_FLAGS = names(
    "--no-pager -P --paginate -p --bare --no-replace-objects --literal-pathspecs --glob-pathspecs"
    " --noglob-pathspecs --icase-pathspecs --no-optional-locks --version --no-lazy-fetch"
)
# Subcommands that neither touch work-tree contents nor diff: any literal option is fine.
_PLAIN_READ = names(
    "rev-parse ls-tree rev-list merge-base show-ref version for-each-ref count-objects show-branch cherry"
    " check-ignore check-attr var"
)
_LOG_FAMILY = names("log shortlog show")
# Reading work-tree files runs the clean filter of the attributes' driver; diff runs diff.external and
# textconv; blame runs both. Nothing else in them writes or runs a program: read-only in the read sandbox.
_CONFIGURED_DRIVERS = names(
    "status diff blame annotate whatchanged range-diff diff-index diff-files diff-tree"
)
# difftool runs a tool named by config *or* the command line; format-patch writes files.
_DRIVERS = names("difftool format-patch")
_READ_SUBCOMMANDS = _PLAIN_READ | _LOG_FAMILY | _CONFIGURED_DRIVERS | names("ls-files describe grep cat-file")
_GIT_EDIT = names(
    "add commit checkout switch reset restore apply mv rm merge rebase cherry-pick revert init"
    " clean am notes worktree gc prune update-index update-ref symbolic-ref commit-tree read-tree"
    " mktag checkout-index config tag stash"
)
_GIT_NETWORK = names("clone fetch pull push ls-remote submodule archive")
_GIT_NETWORK_EDIT = names("clone fetch pull submodule")


def git(name: str, args: list[Word], f: Findings, depth: int) -> None:
    i = 0
    while i < len(args):
        text = args[i].text
        if not args[i].literal:
            # Global options and the subcommand must be exactly what they seem (`git -{C,x}`, `git l{og,}`).
            guard(name, [args[i]], f, operands=False)
            return
        if text in _GIT_GLOBAL_FLAGS:
            i += 1
        elif text == "--namespace":
            i += 2
        elif text.startswith("--namespace="):
            i += 1
        elif (
            text == "-c" and i + 1 < len(args) and args[i + 1].literal and _harmless_setting(args[i + 1].text)
        ):
            i += 2
        elif text.startswith("-"):
            opt = text.partition("=")[0]
            f.add(
                RUN,
                f"git {opt}: not a vetted global option (-C, --git-dir, -c name other config and programs)",
            )
            return
        else:
            break
    if i >= len(args):
        return
    # After the subcommand a glob may stand for paths (`git log src/*`), never for an option; after a literal
    # `--` every word is a path, whatever the shell makes of it (`git log -- *.py`).
    end = next((j for j in range(i + 1, len(args)) if args[j].literal and args[j].text == "--"), len(args))
    if not guard(name, args[i + 1 : end], f):
        return
    sub, rest = args[i].text, args[i + 1 :]
    said, configured = f.count, f.configured
    if sub in _READ_SUBCOMMANDS:
        _read(sub, rest, f)
    elif sub == "config":
        _config(rest, f)
    elif sub == "tag":
        _tag(rest, f)
    elif sub == "stash" and rest[:1] and rest[0].text == "list":
        _log_family("stash list", rest[1:], f, patch_by_default=False)
    elif sub == "reflog" and (not rest or rest[0].text == "show" or rest[0].text.startswith("-")):
        _log_family(
            "reflog", rest[1:] if rest and rest[0].text == "show" else rest, f, patch_by_default=False
        )
    elif sub in ("worktree", "notes") and rest[:1] and rest[0].text in ("list", "show"):
        pass  # they list what exists
    elif sub == "symbolic-ref" and len(rest) == 1 and not rest[0].text.startswith("-"):
        pass  # one operand: it reads the reference
    elif sub == "branch":
        _branch(rest, f)
    elif sub == "remote":
        _remote(rest, f)
    elif sub in _DRIVERS:
        f.add(
            RUN, f"git {sub} can run filter, textconv or diff programs that the repository's config defines"
        )
    elif sub in _GIT_NETWORK:
        f.add(NETWORK, f"git {sub} reaches a remote")
        if sub in _GIT_NETWORK_EDIT:
            f.add(EDIT, f"git {sub} writes the repository")
    elif sub in _GIT_EDIT:
        f.add(EDIT, f"git {sub} modifies the repository or the work tree")
    else:
        f.add(RUN, f"git {sub}: not a vetted subcommand (aliases can run programs)")
    if f.count - said == f.configured - configured:  # nothing found but what the read sandbox confines
        f.env.update(GIT_NEUTRAL_ENV)


# `git -c` settings that only shape output: no value of theirs names a program, a file or a repository.
_HARMLESS_SETTINGS = names(
    "core.quotepath color.ui diff.noprefix diff.mnemonicprefix core.abbrev log.date column.ui"
)


def _harmless_setting(assignment: str) -> bool:
    return assignment.partition("=")[0].lower() in _HARMLESS_SETTINGS


def _read(sub: str, rest: list[Word], f: Findings) -> None:
    if has_long(rest, ("output",)):
        f.add(EDIT, f"git {sub} --output writes a file")
    elif has_long(rest, ("ext-diff", "textconv", "open-files-in-pager", "recurse-submodules")) or (
        sub == "grep" and has_short(rest, "O", "eABCfm")
    ):
        f.add(RUN, f"git {sub}: --ext-diff, --textconv or --open-files-in-pager runs a program")
    elif sub == "cat-file" and has_long(rest, ("filters",)):
        f.add(RUN, "git cat-file --filters runs the repository's smudge filters")
    elif sub in _CONFIGURED_DRIVERS:
        f.add_configured(
            f"git {sub} can run filter, textconv or diff programs that the repository's config defines"
        )
    elif sub in _LOG_FAMILY:
        _log_family(sub, rest, f, patch_by_default=sub == "show")
    elif sub == "ls-files":
        _ls_files(rest, f)
    elif sub == "describe" and has_long(rest, ("dirty", "broken")):
        f.add(RUN, "git describe --dirty reads the work tree, which runs clean filters")


# Long options of log, shortlog, show and stash list that change neither what is read nor what runs.
_LOG_LONG = names(
    "oneline decorate no-decorate decorate-refs decorate-refs-exclude clear-decorations source graph"
    " abbrev-commit no-abbrev-commit abbrev no-abbrev format pretty date relative-date reverse first-parent"
    " exclude-first-parent-only merges no-merges min-parents max-parents no-min-parents no-max-parents all"
    " branches tags remotes glob exclude since after until before since-as-filter author committer grep"
    " grep-reflog all-match invert-grep regexp-ignore-case basic-regexp extended-regexp fixed-strings"
    " perl-regexp max-count skip topo-order date-order author-date-order ancestry-path"
    " simplify-by-decoration simplify-merges full-history dense sparse show-pulls left-right left-only"
    " right-only cherry cherry-mark cherry-pick boundary parents children no-walk do-walk name-only"
    " name-status raw stat numstat shortstat dirstat summary compact-summary no-patch color no-color"
    " no-textconv no-ext-diff no-renames find-renames find-copies follow reflog walk-reflogs notes no-notes"
    " show-notes standard-notes no-standard-notes show-linear-break count use-mailmap no-use-mailmap"
    " mailmap no-mailmap log-size encoding expand-tabs no-expand-tabs null diff-filter relative"
    " no-relative single-worktree ignore-missing summary numbered email group width not"
)
# These show file contents (patches), and pickaxe searches them: textconv drivers run unless --no-textconv.
_PATCH_LONG = names(
    "patch unified patch-with-stat patch-with-raw cc combined-all-paths full-diff binary word-diff"
    " word-diff-regex color-words color-moved color-moved-ws function-context inter-hunk-context minimal"
    " patience histogram anchored diff-algorithm ignore-space-change ignore-all-space ignore-blank-lines"
    " ignore-space-at-eol ignore-cr-at-eol indent-heuristic no-indent-heuristic text pickaxe-all"
    " pickaxe-regex irreversible-delete break-rewrites diff-merges check"
)
_LOG_SHORT_FLAGS = set("iEFPzgMCt")  # -g walks reflogs; -M/-C detect renames and copies
_PATCH_SHORT = set("pucmWwbBaDR")  # -c/-m: combined diffs of merges; the rest shape a patch
_PATCH_SHORT_VALUE = set("USGL")
_STAT_OUTPUT = names("--stat --numstat --shortstat --dirstat --summary --name-only --name-status --raw")


def _log_family(sub: str, rest: list[Word], f: Findings, *, patch_by_default: bool) -> None:
    """Options of log, shortlog, show and ``stash list``: vetted ones only; patches need --no-textconv."""
    shortlog = sub == "shortlog"
    explicit_patch = no_patch = no_textconv = False
    i = 0
    while i < len(rest) and rest[i].text != "--":
        text = rest[i].text
        if text.startswith("--"):
            opt = text[2:].partition("=")[0]
            no_textconv = no_textconv or opt == "no-textconv"
            if opt in _PATCH_LONG:
                explicit_patch = True
            elif opt not in _LOG_LONG:
                f.add(RUN, f"git {sub} --{opt}: option not vetted")
                return
            no_patch = no_patch or opt == "no-patch" or f"--{opt}" in _STAT_OUTPUT
        elif text.startswith("-") and len(text) > 1 and not re.fullmatch(r"-[0-9]+", text):
            for j, ch in enumerate(text[1:], start=1):
                if ch in ("wn" if shortlog else "nl"):  # a value: attached, or (-n) the next word
                    i += 1 if j + 1 == len(text) and ch == "n" else 0
                    break
                if not shortlog and ch in _PATCH_SHORT_VALUE:  # -U<n>, -S<string>, -G<regex>, -L<range>
                    explicit_patch = True
                    i += 1 if j + 1 == len(text) else 0
                    break
                if ch in ("sec" if shortlog else "s"):
                    no_patch = True
                elif not shortlog and ch in _PATCH_SHORT:
                    explicit_patch = True
                elif shortlog or ch not in _LOG_SHORT_FLAGS:
                    f.add(RUN, f"git {sub} -{ch}: option not vetted")
                    return
        i += 1
    if (explicit_patch or (patch_by_default and not no_patch)) and not no_textconv:
        f.add_configured(f"git {sub} shows patches: the repository's textconv drivers run")


_LS_FILES_OK = names(
    "-c --cached -s --stage -z --full-name -o --others -i --ignored --exclude-standard --directory"
    " --no-empty-directory --error-unmatch --abbrev --deduplicate --sparse"
)
_LS_FILES_VALUE = names("-x --exclude -X --exclude-from --exclude-per-directory --format --with-tree")


def _ls_files(rest: list[Word], f: Findings) -> None:
    # -m, -d, -k and --eol compare or read work-tree files: the clean filter of a file's driver would run.
    i = 0
    while i < len(rest) and rest[i].text != "--":
        text = rest[i].text
        opt = text.partition("=")[0]
        if opt in _LS_FILES_VALUE:
            i += 1 if "=" in text or (not text.startswith("--") and len(text) > 2) else 2
            continue
        if text.startswith("-") and opt not in _LS_FILES_OK and not opt.startswith("--abbrev"):
            f.add(RUN, f"git ls-files {opt}: option not vetted (-m and -d run clean filters)")
            return
        i += 1


_CONFIG_READ = names("--get --get-all --get-regexp --get-urlmatch --list -l --get-color --get-colorbool")
_CONFIG_MODIFIERS = names(
    "--global --system --local --worktree --show-origin --show-scope --null -z --name-only --includes"
    " --no-includes --bool --int --bool-or-int --path --expiry-date --fixed-value --type --default"
    " --file -f --blob"
)


def _config(rest: list[Word], f: Findings) -> None:
    opts = [a.text.partition("=")[0] for a in rest if a.text.startswith("-")]
    if not all(o in _CONFIG_READ or o in _CONFIG_MODIFIERS for o in opts):
        f.add(EDIT, "git config without --get or --list writes the configuration")
    elif not any(o in _CONFIG_READ for o in opts) and len(opts) + 1 != len(rest):
        # `git config NAME` alone gets the value; a second operand (or an option's value) sets it.
        f.add(EDIT, "git config without --get or --list writes the configuration")


_TAG_LIST = names(
    "-l --list -n --sort --contains --no-contains --merged --no-merged --points-at --format --column"
    " --no-column -i --ignore-case --color --omit-empty"
)


_TAG_IMPLIES_LIST = names("-l --list --contains --no-contains --merged --no-merged --points-at")


def _tag(rest: list[Word], f: Findings) -> None:
    opts = [a.text.partition("=")[0] for a in rest if a.text.startswith("-")]
    # Creating or deleting a tag needs a name, so without operands it lists (so do -l and what implies it).
    listing = len(opts) == len(rest) or any(o in _TAG_IMPLIES_LIST for o in opts)
    if not listing or not all(o in _TAG_LIST or re.fullmatch(r"-n[0-9]*", o) for o in opts):
        f.add(EDIT, "git tag without -l creates or deletes tags")


_BRANCH_LIST_LONG = names(
    "all remotes list verbose show-current contains no-contains merged no-merged points-at sort format color"
    " no-color column no-column abbrev no-abbrev ignore-case omit-empty"
)
_BRANCH_VALUE = names("--contains --no-contains --merged --no-merged --points-at --sort")


def _branch(rest: list[Word], f: Findings) -> None:
    list_mode = False
    i = 0
    while i < len(rest):
        text = rest[i].text
        if text in _BRANCH_VALUE:
            i += 1
        elif text.startswith("--") and text[2:].partition("=")[0] in _BRANCH_LIST_LONG:
            list_mode = list_mode or text == "--list"
        elif re.fullmatch(r"-[arvil]+", text):
            list_mode = list_mode or "l" in text
        elif not (list_mode and not text.startswith("-")):
            f.add(EDIT, "git branch creates, renames or deletes branches")
            return
        i += 1


def _remote(rest: list[Word], f: Findings) -> None:
    ops = [a.text for a in operands(rest)]
    if not ops or ops[0] == "get-url":
        return
    if ops[0] in ("show", "update", "prune"):
        f.add(NETWORK, f"git remote {ops[0]} reaches a remote")
    if ops[0] != "show":
        f.add(EDIT, f"git remote {ops[0]} modifies the repository configuration")
