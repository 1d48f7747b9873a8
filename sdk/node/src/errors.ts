/**
 * The SDK's errors. Each carries what the CLI said: its exit status and the end of its stderr.
 *
 *     SdkError                  base class: returnCode, signal, stderrTail
 *     ├── CliNotFoundError      the CLI could not be started (not installed, not executable)
 *     ├── UsageError            the CLI refused the input with exit 2 and started nothing (bad option, bad request,
 *     │                         unknown run id)
 *     ├── ProtocolError         stdout had a line that is not an event (not JSON, no type/seq/ts, seq out of order)
 *     │   └── SchemaVersionError    the events are of another major schema version (or carry none)
 *     ├── CliCrashedError       the CLI ended without its summary: it crashed or was killed from outside
 *     ├── KilledError           ended by kill() or the AbortSignal before it printed its summary
 *     ├── ApprovalError         `approve` exited 1: no pending approval, or the answer could not be delivered
 *     └── WaitTimeoutError      wait({ timeoutMs }) ran out; the CLI is still running
 */

export interface CliFacts {
  /** The CLI's exit status; null when it never ran, still runs, or was ended by a signal. */
  returnCode?: number | null;
  /** The signal that ended the CLI (e.g. "SIGKILL"), if one did. */
  signal?: NodeJS.Signals | null;
  /** The end of what the CLI wrote on stderr (at most STDERR_TAIL_BYTES). */
  stderrTail?: string;
  cause?: unknown;
}

export class SdkError extends Error {
  returnCode: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;

  constructor(message: string, facts: CliFacts = {}) {
    super(message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.name = new.target.name;
    this.returnCode = facts.returnCode ?? null;
    this.signal = facts.signal ?? null;
    this.stderrTail = facts.stderrTail ?? "";
  }
}

export class CliNotFoundError extends SdkError {
  /** The program that could not be started. */
  readonly program: string;

  constructor(message: string, program: string, facts: CliFacts = {}) {
    super(message, facts);
    this.program = program;
  }
}

export class UsageError extends SdkError {}

export class ProtocolError extends SdkError {
  /** The offending line (at most 200 characters). */
  readonly line: string;

  constructor(message: string, line: string, facts: CliFacts = {}) {
    super(message, facts);
    this.line = line;
  }
}

export class SchemaVersionError extends ProtocolError {
  /** The stream's `schema_version`, or null when its events carry none. */
  readonly found: string | null;
  /** The version this SDK's types were generated from. */
  readonly expected: string;

  constructor(message: string, line: string, found: string | null, expected: string) {
    super(message, line);
    this.found = found;
    this.expected = expected;
  }
}

export class CliCrashedError extends SdkError {}

export class KilledError extends SdkError {}

export class ApprovalError extends SdkError {}

export class WaitTimeoutError extends SdkError {}
