/**
 * The Node.js SDK of codex-orchestrator: drive the real CLI (`exec --json`, `run --json`, `approve`, `show`) from
 * code, with typed events generated from schemas/events.schema.json.
 *
 *     import { Client } from "@codex-orchestrator/sdk";
 *     const handle = new Client().exec(["make", "test"], { cwd: "repo", policy: "never" });
 *     for await (const event of handle) if (event.type === "output") process.stdout.write(event.data);
 *     const summary = await handle.wait(); // status, exitCode, attempts, approvalSource, sandboxState
 *
 * Files: client.ts `Client`; handle.ts the handles and summaries; options.ts argv building; stream.ts the checked
 * event stream; errors.ts the error tree; events.ts and manifest.ts generated types.
 */
export { APPROVE_TIMEOUT_MS, Client, DEFAULT_CLI } from "./client.js";
export type { ApprovalsOptions, ApproveOptions, ClientOptions, PendingApproval, RunsDirOption } from "./client.js";
export {
  ApprovalError,
  CliCrashedError,
  CliNotFoundError,
  KilledError,
  ProtocolError,
  SchemaVersionError,
  SdkError,
  UsageError,
  WaitTimeoutError,
} from "./errors.js";
export type { CliFacts } from "./errors.js";
export * from "./events.js";
export { ExecHandle, KILL_GRACE_MS, RunHandle, STREAM_DRAIN_MS } from "./handle.js";
export type { ExecSummary, RunSummary } from "./handle.js";
export type * as manifest from "./manifest.js";
export type { ApprovalRecord, Manifest } from "./manifest.js";
export { newRunId } from "./options.js";
export type { Approver, ExecOptions, RunOptions } from "./options.js";
export { checkSchemaVersion, STDERR_TAIL_BYTES } from "./stream.js";
