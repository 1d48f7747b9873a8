/**
 * A running `exec --json` or `run --json` CLI process: its events as an async iterator, `wait()` for the summary,
 * `kill()` (or an AbortSignal) to interrupt it. stdout and stderr are always drained, so the CLI never blocks on us.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Writable } from "node:stream";
import type { Event, Summary } from "./events.js";
import type { ApprovalRecord, Manifest } from "./manifest.js";
import {
  CliCrashedError,
  CliNotFoundError,
  KilledError,
  SdkError,
  UsageError,
  WaitTimeoutError,
  type CliFacts,
} from "./errors.js";
import type { Plan } from "./options.js";
import { EventStream } from "./stream.js";

/** kill(): SIGINT lets the CLI record the run as ended and stop its command's process tree; SIGKILL after this. */
export const KILL_GRACE_MS = 10_000;
/** After the CLI exits, how long its pipes may take to reach EOF (a grandchild might still hold them). */
export const STREAM_DRAIN_MS = 5_000;
/** The CLI's usage/validation exit status. */
export const EXIT_USAGE = 2;

export interface Launch {
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError: NodeJS.ErrnoException | null; // also the stream's failure
}

/** How an `exec` ended: its `summary` event, plus the CLI process's own return code. */
export interface ExecSummary {
  /** succeeded, failed, denied or timed-out */
  status: string;
  /** The command's own exit code; null when it never gave one (denied, timed out, not started). */
  exitCode: number | null;
  attempts: number;
  /** not-required, cache, human or policy */
  approvalSource: string;
  /** none, sandboxed, escalated, denied or unavailable */
  sandboxState: string;
  /** Absolute path of the run's manifest. */
  manifest: string;
  durationMs: number;
  runId: string;
  /** What the CLI exited with: the command's code, 124, 125 or 127 (docs/cli.md). */
  returnCode: number;
  ok: boolean;
}

/** How a `run` ended, read from its manifest: status succeeded, failed or denied; exitCode 0 or 1. */
export interface RunSummary {
  status: string;
  exitCode: number | null;
  manifest: string;
  runId: string;
  returnCode: number;
  error: string | null;
  ok: boolean;
}

abstract class CliHandle<S> implements AsyncIterable<Event> {
  protected readonly plan: Plan;
  protected readonly stream = new EventStream();
  protected readonly child: ChildProcess;
  private readonly ended: Promise<Ended>;
  private endedValue: Ended | null = null;
  private killed = false;
  private killing: Promise<void> | null = null;

  constructor(plan: Plan, launch: Launch, signal?: AbortSignal) {
    this.plan = plan;
    const [program, ...prefix] = launch.command;
    this.child = spawn(program!, [...prefix, ...plan.args], {
      cwd: launch.cwd,
      env: launch.env,
      stdio: [plan.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    });
    this.ended = this.watch();
    if (signal) {
      const abort = (): void => void this.kill();
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
      void this.ended.then(() => signal.removeEventListener("abort", abort));
    }
  }

  private watch(): Promise<Ended> {
    return new Promise<Ended>((settle) => {
      let exited: Omit<Ended, "spawnError"> | null = null;
      let stdoutDone = false;
      let drainTimer: NodeJS.Timeout | null = null;
      const finish = (ended: Ended): void => {
        if (this.endedValue) return;
        if (drainTimer) clearTimeout(drainTimer);
        this.stream.end();
        this.endedValue = ended;
        settle(ended);
      };
      const tryFinish = (): void => {
        if (exited && stdoutDone) finish({ ...exited, spawnError: null });
      };
      this.child.stdout!.on("data", (chunk: Buffer) => this.stream.feedStdout(chunk));
      this.child.stdout!.on("close", () => {
        stdoutDone = true;
        tryFinish();
      });
      this.child.stderr!.on("data", (chunk: Buffer) => this.stream.feedStderr(chunk));
      this.child.stdin?.on("error", () => {}); // EPIPE after the CLI exited: writeStdin() reports it
      this.child.on("error", (error: NodeJS.ErrnoException) => {
        if (this.child.pid !== undefined) return;
        this.stream.fail(cliNotFound(this.child.spawnfile, error));
        finish({ code: null, signal: null, spawnError: error });
      });
      this.child.on("exit", (code, signal) => {
        exited = { code, signal };
        if (!stdoutDone) {
          // A grandchild may hold stdout open: stop waiting for it after a while.
          drainTimer = setTimeout(() => {
            this.child.stdout!.destroy();
            this.child.stderr!.destroy();
            finish({ code, signal, spawnError: null });
          }, STREAM_DRAIN_MS);
          drainTimer.unref();
        }
        tryFinish();
      });
    });
  }

  get runId(): string {
    return this.plan.runId;
  }

  /** Where the run's manifest is (or will be) written; null for a `run` whose request names no task/workspace. */
  get manifestPath(): string | null {
    return this.plan.manifest;
  }

  /** Pass this to `approve(runId, { runsDir })` and `approvals({ runsDir })`. */
  get runsDir(): string | null {
    return this.plan.runsDir;
  }

  /** The CLI's exit status once it has exited, else null. */
  get returnCode(): number | null {
    return this.endedValue?.code ?? null;
  }

  /** Every event in `seq` order, from the first, as it arrives; ends when the CLI closes stdout. Each call
   * starts again from the first event. Throws the ProtocolError (e.g. SchemaVersionError) once the good
   * events before it are out. */
  async *events(): AsyncGenerator<Event, void, undefined> {
    for (let index = 0; ; index += 1) {
      const event = await this.stream.take(index);
      if (event === undefined) return;
      yield event;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Event> {
    return this.events();
  }

  /** Wait for the CLI to exit and return the summary; a typed SdkError if it did not get that far. With
   * `timeoutMs`, WaitTimeoutError when it is still running then (it keeps running: wait again or kill()). */
  async wait(options: { timeoutMs?: number } = {}): Promise<S> {
    let ended: Ended;
    if (options.timeoutMs === undefined) {
      ended = await this.ended;
    } else {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<null>((settle) => {
        timer = setTimeout(() => settle(null), options.timeoutMs);
      });
      const first = await Promise.race([this.ended, timeout]);
      clearTimeout(timer);
      if (first === null) {
        throw new WaitTimeoutError(
          `${this.plan.what} ${this.runId} still running after ${options.timeoutMs} ms (wait longer or kill() it)`,
          { stderrTail: this.stream.stderrTail },
        );
      }
      ended = first;
    }
    const facts: CliFacts = { returnCode: ended.code, signal: ended.signal };
    if (this.stream.failure) throw this.stream.withFacts(this.stream.failure, facts);
    return this.summarise(ended, facts);
  }

  protected abstract summarise(ended: Ended, facts: CliFacts): Promise<S>;

  /** Why there is no summary, as the most specific error. */
  protected noSummary(what: string, facts: CliFacts): SdkError {
    const message = `${this.plan.what} ${this.runId} ${what}`;
    if (this.killed) return this.stream.cliError(KilledError, `${message}: it was killed`, facts);
    if (facts.returnCode === EXIT_USAGE && this.stream.events.length === 0) {
      return this.stream.cliError(UsageError, `${this.plan.what} was refused`, facts);
    }
    return this.stream.cliError(CliCrashedError, message, facts);
  }

  /** Interrupt the CLI (it ends its command's process tree and records the run as failed); SIGKILL after
   * `graceMs`. Resolves once the CLI has exited. */
  kill(options: { graceMs?: number } = {}): Promise<void> {
    if (this.endedValue) return Promise.resolve();
    if (this.killing) return this.killing;
    this.killed = true;
    this.child.kill("SIGINT");
    const grace = setTimeout(() => this.child.kill("SIGKILL"), options.graceMs ?? KILL_GRACE_MS);
    this.killing = this.ended.then(() => clearTimeout(grace));
    return this.killing;
  }

  /** The approval the run waits for (its ApprovalRecord from the manifest), or null. */
  async pendingApproval(): Promise<ApprovalRecord | null> {
    const manifest = await readManifest(this.plan.manifest);
    return manifest?.pending_approval ?? null;
  }

}

export function cliNotFound(program: string, error: NodeJS.ErrnoException): CliNotFoundError {
  const why = error.code === "ENOENT" ? "not found" : (error.code ?? error.message);
  return new CliNotFoundError(
    `cannot start the codex-orchestrator CLI ${JSON.stringify(program)}: ${why} ` +
      "(pass { cli }, set CODEX_ORCHESTRATOR_CLI, or put codex-orchestrator on PATH)",
    program,
    { cause: error },
  );
}

export class ExecHandle extends CliHandle<ExecSummary> {
  /** Send `data` to the command's terminal (a string is UTF-8 encoded). Needs `stdin: true`. */
  async writeStdin(data: string | Uint8Array): Promise<void> {
    const pipe = this.requireStdin();
    await new Promise<void>((settle, fail) =>
      pipe.write(data, (error) =>
        error
          ? fail(new SdkError(`cannot write to exec ${this.runId}: it has ended or stdin is closed`, { cause: error }))
          : settle(),
      ),
    );
  }

  /** End of input: the command's terminal sees end-of-file (Ctrl-D). */
  async closeStdin(): Promise<void> {
    const pipe = this.requireStdin();
    await new Promise<void>((settle) => pipe.end(() => settle()));
  }

  private requireStdin(): Writable {
    if (!this.plan.stdin || !this.child.stdin) {
      throw new SdkError(`exec ${this.runId} was started without stdin: true: nothing to write to`);
    }
    return this.child.stdin;
  }

  protected async summarise(ended: Ended, facts: CliFacts): Promise<ExecSummary> {
    const summary = this.stream.summary as Summary | null;
    if (summary === null) {
      throw this.noSummary(this.stream.events.length ? "ended without a summary" : "did not start", facts);
    }
    return {
      status: summary.status,
      exitCode: summary.exit_code,
      attempts: summary.attempts,
      approvalSource: summary.approval_source,
      sandboxState: summary.sandbox_state,
      manifest: resolve(this.plan.workspace ?? ".", summary.manifest), // records give it workspace-relative
      durationMs: summary.duration_ms,
      runId: summary.run_id || this.runId,
      returnCode: ended.code ?? -1,
      ok: summary.status === "succeeded",
    };
  }
}

export class RunHandle extends CliHandle<RunSummary> {
  protected async summarise(ended: Ended, facts: CliFacts): Promise<RunSummary> {
    // No event means the run never started (a bad request, an id already taken): any manifest there is not ours.
    const manifest = this.stream.events.length ? await readManifest(this.plan.manifest) : null;
    const finished = this.stream.runFinished;
    if (manifest === null || finished === null || ended.code === null) {
      throw this.noSummary(this.stream.events.length ? "ended without run.finished" : "did not start", facts);
    }
    return {
      status: String(manifest.status),
      exitCode: manifest.exit_code ?? null,
      manifest: this.plan.manifest!,
      runId: this.runId,
      returnCode: ended.code,
      error: manifest.error ?? null,
      ok: manifest.status === "succeeded",
    };
  }
}

/** The manifest at `path`, or null when there is none (yet). Manifests are replaced atomically: a bad one is an
 * error, not a half-written file. */
export async function readManifest(path: string | null): Promise<Manifest | null> {
  if (path === null) return null;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new SdkError(`cannot read the manifest ${path}: ${(error as Error).message}`, { cause: error });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new SdkError(`${path} is not a manifest (not JSON)`, { cause });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new SdkError(`${path} is not a manifest`);
  return data as Manifest;
}
