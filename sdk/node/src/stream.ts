/**
 * The CLI's stdout as checked events (each a JSON object with type, seq and ts, seq counting up from 1, of this
 * SDK's major schema version), and the tail of its stderr. No process I/O here: the handle feeds it.
 */
import type { Event } from "./events.js";
import { EVENTS_SCHEMA_VERSION } from "./events.js";
import { ProtocolError, SchemaVersionError, SdkError, type CliFacts } from "./errors.js";

/** How much of the CLI's stderr an error keeps (Prefect can log a lot; the cause is at the end). */
export const STDERR_TAIL_BYTES = 8192;
const LINE_EXCERPT_CHARS = 200;

export class EventStream {
  readonly events: Event[] = [];
  summary: Event | null = null;
  runFinished: Event | null = null;
  /** Why the stream stopped early: a ProtocolError, or the CLI could not start. */
  failure: SdkError | null = null;
  eof = false;
  private stderr: Buffer = Buffer.alloc(0);
  private partial: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  /** A chunk of stdout: complete lines become events; the rest waits for its newline. */
  feedStdout(chunk: Buffer): void {
    let data = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let newline: number;
    while ((newline = data.indexOf(0x0a)) !== -1) {
      this.feedLine(data.subarray(0, newline));
      data = data.subarray(newline + 1);
    }
    this.partial = Buffer.from(data);
    this.wake();
  }

  feedStderr(chunk: Buffer): void {
    const joined = Buffer.concat([this.stderr, chunk]);
    this.stderr = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
  }

  /** stdout is closed: a last line without its newline still counts (the CLI may have died mid-line). */
  end(): void {
    if (this.eof) return;
    if (this.partial.length) this.feedLine(this.partial);
    this.partial = Buffer.alloc(0);
    this.eof = true;
    this.wake();
  }

  /** The stream ends with `error` (the CLI could not be started); the iterator throws it after the events. */
  fail(error: SdkError): void {
    this.failure ??= error;
    this.end();
  }

  get stderrTail(): string {
    return this.stderr.toString("utf8");
  }

  /** Event `index`, waiting for it; undefined at the end of the stream; the protocol error once the good events
   * are out. */
  async take(index: number): Promise<Event | undefined> {
    while (index >= this.events.length && !this.eof && this.failure === null) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (index < this.events.length) return this.events[index];
    if (this.failure !== null) throw this.withFacts(this.failure, {});
    return undefined;
  }

  /** Fill in what the CLI printed on stderr (and how it exited) on an error found earlier. */
  withFacts<E extends SdkError>(error: E, facts: CliFacts): E {
    error.stderrTail = this.stderrTail;
    if (facts.returnCode !== undefined) error.returnCode = facts.returnCode;
    if (facts.signal !== undefined) error.signal = facts.signal;
    return error;
  }

  /** An error of class `Kind` whose message ends with the line of stderr that names the problem. */
  cliError<E extends SdkError>(
    Kind: new (message: string, facts: CliFacts) => E,
    message: string,
    facts: CliFacts,
  ): E {
    return new Kind(withHeadline(message, facts, this.stderrTail), { ...facts, stderrTail: this.stderrTail });
  }

  private feedLine(raw: Buffer): void {
    if (this.failure !== null) return; // keep draining so the CLI never blocks on a full pipe
    try {
      const event = parseEvent(raw.toString("utf8"), this.events.length + 1);
      if (event === null) return;
      this.events.push(event);
      // Found by type, not place: the summary may come before or after run.finished.
      if (event.type === "summary") this.summary = event;
      if (event.type === "run.finished") this.runFinished = event;
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.failure = error;
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** One line of stdout as an event; null for a blank line; ProtocolError for anything else. */
export function parseEvent(line: string, expectedSeq: number): Event | null {
  const text = line.trim();
  if (!text) return null;
  const excerpt = JSON.stringify(text.slice(0, LINE_EXCERPT_CHARS));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError(`the CLI printed a line that is not a JSON event: ${excerpt}`, excerpt, { cause });
  }
  if (
    typeof value !== "object" ||
    value === null ||
    Array.isArray(value) ||
    typeof (value as Record<string, unknown>).type !== "string" ||
    typeof (value as Record<string, unknown>).ts !== "string" ||
    !Number.isInteger((value as Record<string, unknown>).seq)
  ) {
    throw new ProtocolError(`malformed event (every event has type, seq and ts): ${excerpt}`, excerpt);
  }
  const event = value as Record<string, unknown>;
  checkSchemaVersion(event.schema_version, excerpt);
  if (event.seq !== expectedSeq) {
    throw new ProtocolError(`event out of order: seq ${event.seq} arrived where ${expectedSeq} was due`, excerpt);
  }
  return event as unknown as Event;
}

/** Refuse another major version: its fields may mean something else (docs/events.md, "Schema version"). */
export function checkSchemaVersion(found: unknown, excerpt = ""): void {
  const major = EVENTS_SCHEMA_VERSION.split(".")[0];
  if (typeof found === "string" && found.split(".")[0] === major) return;
  const what = typeof found === "string" ? `schema version ${found}` : "no schema_version (older than 1.0)";
  throw new SchemaVersionError(
    `the CLI's events have ${what}, but this SDK reads ${major}.x (${EVENTS_SCHEMA_VERSION}): ` +
      "use a codex-orchestrator CLI and SDK of the same major version",
    excerpt,
    typeof found === "string" ? found : null,
    EVENTS_SCHEMA_VERSION,
  );
}

/** The line of stderr that names the problem: the CLI's own last message, else the last line. */
export function headline(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
  const own = lines.filter((line) => line.startsWith("codex-orchestrator"));
  return (own.length ? own : lines).at(-1) ?? "";
}

function withHeadline(message: string, facts: CliFacts, stderr: string): string {
  const how =
    facts.signal != null ? ` (killed by ${facts.signal})` : facts.returnCode != null ? ` (exit ${facts.returnCode})` : "";
  const line = headline(stderr);
  return `${message}${how}${line ? `: ${line}` : ""}`;
}
