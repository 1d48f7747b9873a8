/**
 * `Client`: starts the real `codex-orchestrator` CLI for every call, so code and the command line share one path.
 * `exec` and `run` return a handle at once; `approvals`, `approve` and `show` are one short CLI call each.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import type { ApprovalRecord, Manifest } from "./manifest.js";
import { ApprovalError, CliCrashedError, SdkError, UsageError, type CliFacts } from "./errors.js";
import { cliNotFound, ExecHandle, EXIT_USAGE, RunHandle, type Launch } from "./handle.js";
import { approveArgs, execPlan, runPlan, type ExecOptions, type RunOptions } from "./options.js";
import { EventStream } from "./stream.js";

/** The CLI used when neither `cli` nor CODEX_ORCHESTRATOR_CLI says otherwise: found on PATH. */
export const DEFAULT_CLI = "codex-orchestrator";
/** `approve` waits up to 30 s for the flow run to finish pausing; leave room for Prefect's start-up on top. */
export const APPROVE_TIMEOUT_MS = 120_000;
const SHOW_TIMEOUT_MS = 60_000;

export interface ClientOptions {
  /** The CLI: a path, or a command and its first arguments (e.g. [".venv/bin/python", "-m",
   * "codex_orchestrator.cli"]). Default: env CODEX_ORCHESTRATOR_CLI, then `codex-orchestrator` on PATH. */
  cli?: string | readonly string[];
  /** Added to this process's environment for every CLI call. */
  env?: Readonly<Record<string, string>>;
  /** Where the CLI runs and relative paths resolve (default: the current directory). */
  cwd?: string;
}

export interface RunsDirOption {
  /** Where the run's records are (default: `./.runs` under the client's cwd, as for the CLI). */
  runsDir?: string;
}

export interface ApproveOptions extends RunsDirOption {
  /** Answer this approval only (`--approval ID`); passed only when given. */
  approvalId?: string;
  deny?: boolean;
  /** Approve, and let the same call run unasked for the rest of the run. */
  forSession?: boolean;
  /** Approve, and append an allow rule for the call to the rules file (`.codex/rules/default.rules`): matching
   * calls run unasked from now on (`approve --remember`). */
  remember?: boolean;
  /** Recorded with the answer. */
  reason?: string;
}

export interface ApprovalsOptions extends RunsDirOption {
  /** Only this run's pending approvals. */
  runId?: string;
}

/** A pending approval, as recorded in its run's manifest, with the run it belongs to. */
export interface PendingApproval extends ApprovalRecord {
  run_id: string;
}

interface Completed {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stream: EventStream;
}

export class Client {
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;

  constructor(options: ClientOptions = {}) {
    const cli = options.cli ?? process.env.CODEX_ORCHESTRATOR_CLI ?? DEFAULT_CLI;
    this.command = typeof cli === "string" ? [cli] : [...cli];
    if (this.command.length === 0 || !this.command[0]) throw new TypeError("cli must name a program");
    this.env = { ...(options.env ?? {}) };
    this.cwd = resolve(options.cwd ?? process.cwd());
  }

  /** Start one tool call through the gate: `codex-orchestrator exec --json ... -- argv`. */
  exec(argv: readonly string[], options: ExecOptions = {}): ExecHandle {
    return new ExecHandle(execPlan(this.cwd, argv, options), this.launch(), options.signal);
  }

  /** Start `codex-orchestrator run --json --no-prompt requestPath`; approvals wait for `approve()`. */
  run(requestPath: string, options: RunOptions = {}): RunHandle {
    return new RunHandle(runPlan(this.cwd, requestPath, options), this.launch(), options.signal);
  }

  /** The run's manifest (`show RUN_ID --json`). UsageError for an unknown run id. */
  async show(runId: string, options: RunsDirOption = {}): Promise<Manifest> {
    const args = ["show", runId, "--json", ...this.runsDirArgs(options)];
    const done = await this.call(args, SHOW_TIMEOUT_MS);
    this.check(done, `could not show run ${runId}`, SdkError);
    try {
      return JSON.parse(done.stdout) as Manifest;
    } catch (cause) {
      throw new SdkError(`show ${runId} --json printed something that is not a manifest`, { cause });
    }
  }

  /** Approvals waiting for an answer, of `runId` or of every unfinished run under the runs dir: one
   * `approvals --json` call, so the SDK lists exactly what `approve` can answer (an approval whose asking
   * process is gone is not listed). Each is the recorded ApprovalRecord, with its `run_id`. */
  async approvals(options: ApprovalsOptions = {}): Promise<PendingApproval[]> {
    const args = ["approvals", ...(options.runId !== undefined ? [options.runId] : []), "--json"];
    const done = await this.call([...args, ...this.runsDirArgs(options)], SHOW_TIMEOUT_MS);
    this.check(done, "could not list pending approvals", SdkError);
    return done.stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => {
        try {
          return JSON.parse(line) as PendingApproval;
        } catch (cause) {
          throw new SdkError(`approvals --json printed a line that is not an approval: ${line.slice(0, 80)}`, {
            cause,
          });
        }
      });
  }

  /** Answer the pending approval of `runId` with `codex-orchestrator approve`. UsageError for an unknown run (or
   * deny with forSession), ApprovalError when it has no pending approval or the answer could not be delivered. */
  async approve(runId: string, options: ApproveOptions = {}): Promise<void> {
    const done = await this.call(approveArgs(runId, this.cwd, options), APPROVE_TIMEOUT_MS);
    this.check(done, `could not answer the approval of run ${runId}`, ApprovalError);
  }

  private launch(): Launch {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env };
    // The event stream is UTF-8 whatever the locale; without this a non-UTF-8 locale breaks --json output.
    env.PYTHONIOENCODING ??= "utf-8";
    return { command: this.command, env, cwd: this.cwd };
  }

  private runsDirArgs(options: RunsDirOption): string[] {
    return options.runsDir !== undefined ? ["--runs-dir", resolve(this.cwd, options.runsDir)] : [];
  }

  /** Run a short CLI command to its end, collecting stdout and the tail of stderr; SdkError after `timeoutMs`. */
  private call(args: readonly string[], timeoutMs: number): Promise<Completed> {
    const launch = this.launch();
    const [program, ...prefix] = launch.command;
    return new Promise<Completed>((settle, fail) => {
      const stream = new EventStream();
      const stdout: Buffer[] = [];
      const child = spawn(program!, [...prefix, ...args], {
        cwd: launch.cwd,
        env: launch.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      // Our own timer, not spawn's `timeout`: that one keeps the event loop alive when the spawn fails.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGINT");
      }, timeoutMs);
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => stream.feedStderr(chunk));
      child.on("error", (error: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return;
        clearTimeout(timer);
        fail(cliNotFound(program!, error));
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        if (timedOut) {
          fail(stream.cliError(SdkError, `${args[0]} ${args[1]} did not finish within ${timeoutMs} ms`, { signal }));
        } else {
          settle({ code, signal, stdout: Buffer.concat(stdout).toString("utf8"), stream });
        }
      });
    });
  }

  /** Exit 0 is success, 2 a UsageError, 1 the command's own failure (`failed`), anything else a crash. */
  private check(done: Completed, message: string, failed: typeof SdkError): void {
    if (done.code === 0) return;
    const facts: CliFacts = { returnCode: done.code, signal: done.signal };
    const Kind = done.code === EXIT_USAGE ? UsageError : done.code === 1 ? failed : CliCrashedError;
    throw done.stream.cliError(Kind, message, facts);
  }
}
