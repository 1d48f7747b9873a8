"""A deterministic corpus of rules files and commands for the agreement test with ``codex execpolicy check``.

Hand-written files cover the edge cases (alternatives, host_executable, conflicting rules, Starlark
variables/loops/f-strings, several files at once); generated files and commands add volume from one seed.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

SEED = 19

HAND_WRITTEN: dict[str, str] = {
    "git.rules": """
# Never push to main; ask before any other push; reading is fine.
prefix_rule(
    pattern = ["git", "push", ["origin", "upstream"], ["main", "master"]],
    decision = "forbidden",
    justification = "never push to main: open a pull request",
    match = [["git", "push", "origin", "main"], "git push upstream master --force"],
    not_match = ["git push origin feature", "git pull origin main"],
)
prefix_rule(pattern = ["git", "push"], decision = "prompt", justification = "pushes leave the machine")
prefix_rule(pattern = ["git", ["status", "diff", "log", "show"]], decision = "allow")
prefix_rule(pattern = ["git"], decision = "prompt")
host_executable(name = "git", paths = ["/usr/bin/git", "/usr/local/bin/git"])
""",
    "npm.rules": """
managers = ["npm", "pnpm", "yarn"]
for m in managers:
    prefix_rule(pattern = [m, ["install", "ci", "add"]], decision = "prompt", justification = f"{m} installs code")
prefix_rule(pattern = [managers, "test"], decision = "allow", match = ["npm test", "yarn test --watch"])
prefix_rule(pattern = ["npm", "publish"], decision = "forbidden")
""",
    "python.rules": """
prefix_rule(["pytest"], "allow")
prefix_rule(["python", "-m", "pytest"], "allow")
prefix_rule(["python3", "-m", ["pytest", "unittest"]], "allow")
prefix_rule(["python", "-c"], "prompt", justification = "arbitrary code")
prefix_rule(["pip", "install"], decision = "prompt", not_match = [["pip", "list"]])
host_executable(name = "python3", paths = ["/usr/bin/python3"])
host_executable(name = "pytest", paths = [])
""",
    "conflict.rules": """
prefix_rule(pattern = ["rm"], decision = "allow")
prefix_rule(pattern = ["rm", "-rf"], decision = "forbidden", justification = "no recursive deletes")
prefix_rule(pattern = ["rm", ["-rf", "-fr"], "/"], decision = "prompt")
prefix_rule(pattern = ["rm", "-r"], decision = "prompt")
prefix_rule(pattern = ["rm"], decision = "prompt", justification = "second opinion")
""",
    "unicode.rules": """
prefix_rule(pattern = ["échó", "héllo wörld"], decision = "prompt", justification = "ünïcode — ok")
prefix_rule(pattern = ["echo", "it's \\"quoted\\""], decision = "forbidden")
prefix_rule(pattern = ["echo", ["a b", "c\\td", ""]], decision = "allow")
prefix_rule(pattern = ["日本語", ["コマンド"]], decision = "forbidden", justification = "テスト")
prefix_rule(pattern = ["sh", "-c", "rm -rf /"], decision = "forbidden", match = [["sh", "-c", "rm -rf /"]])
""",
    "hosts.rules": """
host_executable(name = "curl", paths = ["/usr/bin/curl", "/root/bin/curl"])
prefix_rule(pattern = ["curl"], decision = "prompt", justification = "network")
prefix_rule(pattern = ["wget"], decision = "forbidden")
prefix_rule(pattern = ["ls"], decision = "allow")
host_executable(name = "ls", paths = ["/bin/ls", "/usr/bin/ls", "/usr/bin/ls"])
""",
    "override_hosts.rules": """
host_executable(name = "git", paths = ["/opt/git/bin/git"])
host_executable(name = "ls", paths = ["/usr/bin/ls"])
prefix_rule(pattern = ["git", "reset", "--hard"], decision = "forbidden", justification = "keeps work")
""",
    "docker.rules": """
def deny(*cmd, why = "denied"):
    prefix_rule(pattern = list(cmd), decision = "forbidden", justification = why)

deny("docker", ["run", "exec"], "--privileged", why = "privileged containers")
deny("docker", "system", "prune")
prefix_rule(pattern = ["docker", ["ps", "images", "logs"]], decision = "allow")
prefix_rule(pattern = [["docker", "podman"]], decision = "prompt")
network_rule(host = "registry.npmjs.org", protocol = "https", decision = "allow")
""",
    "make.rules": """
targets = ["test", "lint", "typecheck"]
prefix_rule(pattern = ["make", targets], decision = "allow", match = [["make", t] for t in targets])
prefix_rule(pattern = ["make"], decision = "prompt", not_match = ["cmake ."])
prefix_rule(pattern = ["make", "install"], decision = "forbidden")
""",
}


VOCAB = [
    "git",
    "push",
    "pull",
    "status",
    "origin",
    "main",
    "master",
    "feature",
    "npm",
    "install",
    "ci",
    "test",
    "pnpm",
    "yarn",
    "add",
    "rm",
    "-rf",
    "-r",
    "-fr",
    "/",
    "ls",
    "-la",
    "curl",
    "wget",
    "docker",
    "run",
    "exec",
    "--privileged",
    "python",
    "python3",
    "-m",
    "pytest",
    "-c",
    "make",
    "lint",
    "cargo",
    "build",
    "échó",
    "héllo wörld",
    "a b",
    "c\td",
    "",
    'it\'s "quoted"',
    "日本語",
    "コマンド",
    "--force",
    "x",
    "-",
    "--",
    "$HOME",
    "*.py",
    "'single'",
    "back\\slash",
    "new\nline",
    "emoji 🎉",
]
PROGRAMS = [
    "git",
    "npm",
    "pnpm",
    "yarn",
    "rm",
    "ls",
    "curl",
    "wget",
    "docker",
    "podman",
    "python",
    "python3",
    "pytest",
    "make",
    "cargo",
    "sh",
    "echo",
    "échó",
    "日本語",
    "kubectl",
    "terraform",
]
PATHS = [
    "/usr/bin/{}",
    "/usr/local/bin/{}",
    "/opt/git/bin/{}",
    "/bin/{}",
    "./{}",
    "bin/{}",
    "//usr/bin/{}",
    "/usr/bin/../bin/{}",
    "/usr/bin/{}/",
    "/usr/bin/./{}",
    "/root/bin/{}",
]


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _token(rng: random.Random) -> str:
    if rng.random() < 0.25:
        alts = rng.sample(VOCAB, rng.randint(2, 3))
        return "[" + ", ".join(map(_s, alts)) + "]"
    return _s(rng.choice(VOCAB))


def generated_file(rng: random.Random, index: int) -> str:
    lines = [f"# generated rules file {index}"]
    for _ in range(rng.randint(6, 14)):
        head = rng.choice(PROGRAMS)
        first = _s(head) if rng.random() < 0.85 else "[" + ", ".join(map(_s, rng.sample(PROGRAMS, 2))) + "]"
        rest = [_token(rng) for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 2, 3]))]
        decision = rng.choice(["allow", "prompt", "forbidden", None])
        args = [f"pattern = [{', '.join([first, *rest])}]"]
        if decision is not None:
            args.append(f"decision = {_s(decision)}")
        if rng.random() < 0.3:
            args.append(f"justification = {_s(rng.choice(['why not', 'politique — é', 'x' * 40]))}")
        lines.append(f"prefix_rule({', '.join(args)})")
    if rng.random() < 0.5:
        name = rng.choice(PROGRAMS[:12])
        paths = rng.sample(
            [p.format(name) for p in ("/usr/bin/{}", "/usr/local/bin/{}", "/opt/git/bin/{}")],
            rng.randint(0, 2),
        )
        lines.append(f"host_executable(name = {_s(name)}, paths = [{', '.join(map(_s, paths))}])")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Corpus:
    files: dict[str, str]  # name -> text
    sets: list[tuple[str, ...]]  # the rule sets checked: one file, or several read together
    commands: list[tuple[str, ...]]


_PATTERN = re.compile(
    r"pattern\s*=\s*(\[.*?\])\s*,\s*(?:decision|justification|match|not_match)|prefix_rule\((\[.*?\]),"
)


def patterns(files: dict[str, str]) -> list[list[list[str]]]:
    """The literal patterns written in the files (each element as its alternatives), to aim commands at."""
    out = []
    for text in files.values():
        for m in _PATTERN.finditer(text):
            try:
                value = json.loads(m.group(1) or m.group(2))
            except ValueError:
                continue  # built by Starlark code (a variable, a loop): not literal
            if isinstance(value, list) and value:
                out.append([v if isinstance(v, list) else [v] for v in value])
    return out


def aimed(rng: random.Random, pattern: list[list[str]]) -> tuple[str, ...]:
    """A command at a rule: its pattern with alternatives picked, sometimes cut short, changed or extended."""
    tokens = [rng.choice(alts) for alts in pattern]
    roll = rng.random()
    if roll < 0.15 and len(tokens) > 1:
        tokens = tokens[: rng.randint(1, len(tokens) - 1)]
    elif roll < 0.3:
        tokens[rng.randrange(len(tokens))] = rng.choice(VOCAB)
    if rng.random() < 0.25:
        tokens[0] = rng.choice(PATHS).format(tokens[0])
    tokens += [rng.choice(VOCAB) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
    return tuple(tokens)


def command(rng: random.Random) -> tuple[str, ...]:
    program = rng.choice(PROGRAMS)
    if rng.random() < 0.2:
        program = rng.choice(PATHS).format(program)
    args = [rng.choice(VOCAB) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 3, 4, 6]))]
    return (program, *args)


def build(n_generated: int = 11, n_commands: int = 500) -> Corpus:
    rng = random.Random(SEED)
    files = dict(HAND_WRITTEN)
    for i in range(n_generated):
        files[f"gen{i:02d}.rules"] = generated_file(rng, i)
    names = sorted(files)
    sets: list[tuple[str, ...]] = [(n,) for n in names]
    sets += [
        ("git.rules", "override_hosts.rules"),
        ("hosts.rules", "override_hosts.rules", "conflict.rules"),
        ("npm.rules", "python.rules", "make.rules", "docker.rules"),
        tuple(n for n in names if n.startswith("gen"))[:5],
    ]
    commands = set()
    # Commands built from the rules' own tokens hit rules; random ones mostly miss: both are needed.
    hand = [
        ("git", "push", "origin", "main"),
        ("git", "push", "origin", "feature"),
        ("git", "push"),
        ("/usr/bin/git", "push", "origin", "main"),
        ("/opt/git/bin/git", "reset", "--hard", "HEAD"),
        ("/usr/local/bin/git", "status"),
        ("git",),
        ("npm", "test"),
        ("/usr/bin/python3", "-m", "pytest"),
        ("rm", "-rf", "/"),
        ("rm", "-fr", "/"),
        ("rm", "-r", "x"),
        ("rm",),
        ("echo", ""),
        ("echo", "a b"),
        ("echo", 'it\'s "quoted"'),
        ("échó", "héllo wörld", "!"),
        ("日本語", "コマンド"),
        ("sh", "-c", "rm -rf /"),
        ("/root/bin/curl", "x"),
        ("/usr/bin/ls", "-la"),
        ("/bin/ls",),
        ("docker", "run", "--privileged", "img"),
        ("podman", "ps"),
        ("make", "install"),
        ("make", "test"),
        ("", "x"),
        ("pytest", "-k", "name with spaces"),
        ("/usr/bin/pytest",),
    ]
    commands.update(hand)
    aims = patterns(files)
    while len(commands) < n_commands:
        commands.add(aimed(rng, rng.choice(aims)) if rng.random() < 0.5 else command(rng))
    ordered = sorted(commands)
    rng.shuffle(ordered)
    return Corpus(
        files=files, sets=sets, commands=ordered[:n_commands] if len(ordered) > n_commands else ordered
    )
