/**
 * What to start: the CLI's argv for each command, and where a run's records will be. Mirrors the Python SDK's
 * `ClientBase` (codex_orchestrator/sdk/_shared.py) option for option; no process I/O here.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";

export const RUNS_DIRNAME = ".runs";

/** Who answers approvals of an `exec`: see docs/cli.md, `--approver`. */
export type Approver = "none" | "prefect" | "auto";

/** Options of `Client.exec`; each is one `exec` option (docs/cli.md). Anything left out keeps the CLI's default,
 * except `approver`, which is "none" here: code has no terminal to ask at, so a call that needs approval is denied
 * unless you choose "prefect" (pause and wait for `approve`) or "auto" (pause only when the call needs approval up
 * front). `runId` defaults to a fresh id chosen here, so a handle knows its run before the CLI prints anything. */
export interface ExecOptions {
  cwd?: string;
  workspace?: string;
  task?: string;
  runId?: string;
  runsDir?: string;
  policy?: "untrusted" | "on-failure" | "on-request" | "never" | (string & {});
  profile?: string | readonly string[];
  needs?: string | readonly string[];
  sandbox?: "none" | "read-only" | "workspace-write" | (string & {});
  timeoutS?: number;
  retries?: number;
  ask?: boolean;
  approver?: Approver;
  approvalTimeoutS?: number;
  ssh?: string;
  host?: string;
  identityFile?: string;
  knownHosts?: string;
  trustOnFirstUse?: boolean;
  /** Extra environment for the command (`--env NAME=VALUE`). */
  env?: Readonly<Record<string, string>>;
  /** Variables passed through to the command and redacted from every record (`--secret-env NAME`). */
  secretEnv?: readonly string[];
  /** false runs the command directly (`--no-gate`). */
  gate?: boolean;
  /** Open the command's stdin: `writeStdin()` / `closeStdin()` on the handle. */
  stdin?: boolean;
  /** Put before `--` verbatim; must not change where records go. */
  extraArgs?: readonly string[];
  /** Aborting it is `kill()`. */
  signal?: AbortSignal;
}

export interface RunOptions {
  runsDir?: string;
  runId?: string;
  signal?: AbortSignal;
}

/** One CLI process to start, and where its run's records will be. */
export interface Plan {
  what: "exec" | "run";
  args: string[];
  stdin: boolean;
  runId: string;
  workspace: string | null;
  runsDir: string | null;
  manifest: string | null;
}

const EXEC_KEYS = new Set([
  "cwd", "workspace", "task", "runId", "runsDir", "policy", "profile", "needs", "sandbox", "timeoutS", "retries",
  "ask", "approver", "approvalTimeoutS", "ssh", "host", "identityFile", "knownHosts", "trustOnFirstUse", "env",
  "secretEnv", "gate", "stdin", "extraArgs", "signal",
]);
// ExecOptions keys that are one `--option VALUE` each.
const EXEC_VALUES: ReadonlyArray<[keyof ExecOptions, string]> = [
  ["cwd", "--cwd"],
  ["workspace", "--workspace"],
  ["task", "--task"],
  ["runsDir", "--runs-dir"],
  ["policy", "--policy"],
  ["sandbox", "--sandbox"],
  ["timeoutS", "--timeout"],
  ["retries", "--retries"],
  ["approvalTimeoutS", "--approval-timeout"],
  ["ssh", "--ssh"],
  ["host", "--host"],
  ["identityFile", "--identity-file"],
  ["knownHosts", "--known-hosts"],
];
const EXEC_PATHS = new Set<keyof ExecOptions>(["cwd", "workspace", "runsDir", "identityFile", "knownHosts"]);
const EXEC_FLAGS: ReadonlyArray<[keyof ExecOptions, string]> = [
  ["ask", "--ask"],
  ["trustOnFirstUse", "--trust-on-first-use"],
  ["stdin", "--stdin"],
];
const EXEC_LISTS: ReadonlyArray<[keyof ExecOptions, string]> = [
  ["profile", "--profile"],
  ["needs", "--needs"],
];

/** Sortable, unique run id, as the CLI makes them: `20261125T012233Z-3fa9c1`. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

export function manifestPath(runsDir: string, task: string, runId: string): string {
  return join(runsDir, task, "cli", runId, "manifest.json");
}

/** `exec --json ... -- argv`. Relative paths mean what they would to the CLI, which runs in `base`. */
export function execPlan(base: string, argv: readonly string[], options: ExecOptions): Plan {
  const unknown = Object.keys(options).filter((key) => !EXEC_KEYS.has(key)).sort();
  if (unknown.length) {
    throw new TypeError(`exec() got unexpected options ${unknown.join(", ")}; allowed: ${[...EXEC_KEYS].join(", ")}`);
  }
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new TypeError("exec() takes the command as a non-empty array of arguments, e.g. ['sh', '-c', 'make test']");
  }
  const opts: Record<string, unknown> = { ...options };
  // Over SSH --cwd is a remote path, and the local workspace is where the CLI runs (cli_exec.py).
  const remote = Boolean(opts.ssh || opts.host);
  for (const key of EXEC_PATHS) {
    if (typeof opts[key] === "string" && !(remote && key === "cwd")) opts[key] = resolve(base, opts[key] as string);
  }
  const runId = (opts.runId as string | undefined) || newRunId();
  const args = ["exec", "--json", "--run-id", runId, "--approver", String(opts.approver ?? "none")];
  for (const [key, flag] of EXEC_VALUES) {
    if (opts[key] !== undefined && opts[key] !== null) args.push(flag, String(opts[key]));
  }
  for (const [key, flag] of EXEC_FLAGS) {
    if (opts[key]) args.push(flag);
  }
  for (const [key, flag] of EXEC_LISTS) {
    const value = opts[key] as string | readonly string[] | undefined;
    if (value !== undefined) args.push(flag, typeof value === "string" ? value : value.join(","));
  }
  for (const [name, value] of Object.entries(options.env ?? {})) args.push("--env", `${name}=${value}`);
  for (const name of options.secretEnv ?? []) args.push("--secret-env", name);
  if (options.gate === false) args.push("--no-gate");
  args.push(...(options.extraArgs ?? []), "--", ...argv.map(String));
  const workspace =
    (opts.workspace as string | undefined) ?? (remote ? undefined : (opts.cwd as string | undefined)) ?? base;
  const runsDir = (opts.runsDir as string | undefined) ?? join(workspace, RUNS_DIRNAME);
  return {
    what: "exec",
    args,
    stdin: Boolean(options.stdin),
    runId,
    workspace,
    runsDir,
    manifest: manifestPath(runsDir, options.task || "exec", runId),
  };
}

/** `run --json --no-prompt ... request`. The CLI validates the request (a bad one is a UsageError); here it is only
 * read for its `task` and `workspace`, to know where the records will be. */
export function runPlan(base: string, requestFile: string, options: RunOptions): Plan {
  const path = resolve(base, requestFile);
  const target = requestTarget(path);
  const runId = options.runId || newRunId();
  const runsDir =
    options.runsDir !== undefined
      ? resolve(base, options.runsDir)
      : target
        ? join(target.workspace, RUNS_DIRNAME)
        : null;
  const args = ["run", "--json", "--no-prompt", "--run-id", runId];
  if (runsDir !== null) args.push("--runs-dir", runsDir);
  args.push(path);
  return {
    what: "run",
    args,
    stdin: false,
    runId,
    workspace: target?.workspace ?? null,
    runsDir,
    manifest: target && runsDir !== null ? manifestPath(runsDir, target.task, runId) : null,
  };
}

/** The request's task and workspace (resolved as the CLI does: against the request file's directory), or null
 * when the file does not say; the CLI then refuses it with its own message. */
function requestTarget(path: string): { task: string; workspace: string } | null {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8")); // YAML is a superset of JSON: both request formats
  } catch {
    return null;
  }
  if (typeof doc !== "object" || doc === null) return null;
  const { task, workspace } = doc as Record<string, unknown>;
  if (typeof task !== "string" || typeof workspace !== "string") return null;
  const expanded = workspace === "~" || workspace.startsWith("~/") ? homedir() + workspace.slice(1) : workspace;
  return { task, workspace: isAbsolute(expanded) ? expanded : resolve(dirname(path), expanded) };
}

export function approveArgs(
  runId: string,
  base: string,
  options: {
    approvalId?: string;
    deny?: boolean;
    forSession?: boolean;
    remember?: boolean;
    reason?: string;
    runsDir?: string;
  },
): string[] {
  const args = ["approve", runId];
  if (options.approvalId !== undefined) args.push("--approval", options.approvalId);
  if (options.deny) args.push("--deny");
  if (options.forSession) args.push("--for-session");
  if (options.remember) args.push("--remember");
  if (options.reason !== undefined) args.push("--reason", options.reason);
  if (options.runsDir !== undefined) args.push("--runs-dir", resolve(base, options.runsDir));
  return args;
}
