// GENERATED from schemas/events.schema.json by scripts/generate-types.mjs (npm run generate). Do not edit.

/** MAJOR.MINOR of the event schema these types were generated from; see docs/events.md. */
export const EVENTS_SCHEMA_VERSION = "1.2";
export type Event =
  | RunStarted
  | RunFinished
  | MilestoneStarted
  | MilestoneFinished
  | ToolCallStarted
  | ApprovalRequested
  | ApprovalResolved
  | AttemptStarted
  | Output
  | OutputOmitted
  | AttemptFinished
  | RetryScheduled
  | SandboxDenied
  | GuardSwitched
  | ToolCallFinished
  | ToolCallSkipped
  | InstanceDown
  | NotificationFailed
  | InstructionsDrift
  | DiagnosticsRecorded
  | GuardrailResult
  | ReviewRequested
  | ReviewVerdict
  | Summary
  | AgentStarted
  | AgentTurnStarted
  | AgentTurnFinished
  | AgentMessage
  | AgentReasoning
  | AgentCommand
  | AgentFileChange
  | AgentToolUse
  | AgentPlan
  | AgentTokens
  | AgentError
  | AgentFinished;

export interface RunStarted {
  /**
   * the gate feature flag of this run (metrics rollout)
   */
  gate_enabled: boolean;
  /**
   * manifest path, relative to the workspace
   */
  manifest: string;
  mode: "run" | "exec";
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  task_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "run.started";
}
export interface RunFinished {
  exit_code: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "run.finished";
}
export interface MilestoneStarted {
  flow_run_id: string | null;
  milestone: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "milestone.started";
}
export interface MilestoneFinished {
  milestone: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "milestone.finished";
}
export interface ToolCallStarted {
  backend: string;
  command: string;
  cwd: string;
  kind: string;
  /**
   * the milestone the call belongs to
   */
  milestone: string | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  step: string;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "tool_call.started";
}
export interface ApprovalRequested {
  approval_id: string;
  /**
   * the paused Prefect flow run that waits for the answer, if any
   */
  flow_run_id: string | null;
  needs: string[];
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  purpose: "capability" | "escalation" | "instructions";
  reason: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "approval.requested";
}
export interface ApprovalResolved {
  /**
   * the channel the answer came through
   */
  answered_by: string | null;
  approval_id: string | null;
  for_session: boolean;
  outcome: "approved" | "denied" | "forbidden" | "not-required" | "cancelled";
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  reason: string | null;
  /**
   * the name the reviewer gave, if any
   */
  reviewer: string | null;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  source: "not-required" | "cache" | "human" | "policy" | "hook";
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "approval.resolved";
}
export interface AttemptStarted {
  attempt: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  sandboxed: boolean;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "attempt.started";
}
export interface Output {
  /**
   * the session's own output sequence number
   */
  chunk_seq: number;
  data: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  session_id: string;
  stream: string;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "output";
}
/**
 * The call's output went over the event log's budget: the head was logged, then this, then the tail.
 */
export interface OutputOmitted {
  /**
   * the per-call output budget of the event log
   */
  budget_bytes: number;
  /**
   * bytes of output between the logged head and tail
   */
  omitted_bytes: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  session_id: string;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "output.omitted";
}
export interface AttemptFinished {
  attempt: number;
  duration_ms: number;
  error: string | null;
  exit_code: number | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the exec session the attempt ran in, if any
   */
  session_id: string | null;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "attempt.finished";
}
export interface RetryScheduled {
  /**
   * the attempt that failed
   */
  attempt: number;
  delay_s: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  reason: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "retry.scheduled";
}
export interface SandboxDenied {
  denial: string;
  evidence: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "sandbox.denied";
}
export interface GuardSwitched {
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  samples: number;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  session_id: string;
  threshold_ms: number;
  tool_call_id: string | null;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "guard.switched";
}
export interface ToolCallFinished {
  approval_source: string;
  attempts: number;
  duration_ms: number;
  exit_code: number | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  sandbox_state: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: string;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "tool_call.finished";
}
export interface ToolCallSkipped {
  /**
   * the milestone the call belongs to
   */
  milestone: string | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  reason: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  step: string;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "tool_call.skipped";
}
export interface InstanceDown {
  instance: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  reason: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "instance.down";
}
/**
 * A notification target could not be told (notify.py); the run goes on.
 */
export interface NotificationFailed {
  detail: string;
  /**
   * the notification it was for, e.g. run.failed
   */
  event: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * command:<argv0>, block:<slug/name> or prefect-event
   */
  target: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "notification.failed";
}
/**
 * The run's instruction files differ from the previous run of the same task (drift.py).
 */
export interface InstructionsDrift {
  added: string[];
  changed: string[];
  /**
   * on_instruction_drift: ignore, warn or ask
   */
  policy: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  previous_run_id: string;
  removed: string[];
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "instructions.drift";
}
/**
 * Verification measured the workspace's change since the run began (``git diff --stat``'s summary).
 */
export interface DiagnosticsRecorded {
  deletions: number;
  files_changed: number;
  insertions: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "diagnostics.recorded";
}
/**
 * One guardrail's outcome (spec-guard included, which runs without a tool call).
 */
export interface GuardrailResult {
  call_id: string | null;
  name: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  required: boolean;
  result: "passed" | "failed" | "skipped" | "error";
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "guardrail.result";
}
/**
 * The review waits for an answer in a paused Prefect flow run (``approve RUN_ID`` answers it).
 */
export interface ReviewRequested {
  flow_run_id: string | null;
  policy: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "review.requested";
}
export interface ReviewVerdict {
  by: string | null;
  comments: string | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  source: "human" | "reviewer" | "policy";
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "review.verdict";
  verdict: "approved" | "changes-requested" | "skipped";
}
export interface Summary {
  approval_source: string;
  attempts: number;
  duration_ms: number;
  /**
   * why the call did not succeed, when it did not
   */
  error: string | null;
  /**
   * the command's own exit code when it ran
   */
  exit_code: number | null;
  manifest: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  sandbox_state: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "summary";
}
/**
 * The agent step started its agent's thread, or resumed an earlier run's.
 */
export interface AgentStarted {
  /**
   * which agent, e.g. codex
   */
  agent: string;
  agent_version: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  /**
   * an earlier run's thread was resumed, not a new one started
   */
  resumed: boolean;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  type: "agent.started";
}
export interface AgentTurnStarted {
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.turn.started";
}
export interface AgentTurnFinished {
  /**
   * as the agent measured it
   */
  duration_ms: number | null;
  error: string | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: "completed" | "failed" | "interrupted" | "other";
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.turn.finished";
}
/**
 * A message of the agent to the user; the last one of a turn is its answer.
 */
export interface AgentMessage {
  /**
   * the agent's id of this item in its thread
   */
  item_id: string;
  /**
   * bytes left out of the middle of the text (budget)
   */
  omitted_bytes: number;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  text: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.message";
}
/**
 * The summary of its reasoning the agent chose to show (never raw reasoning).
 */
export interface AgentReasoning {
  /**
   * the agent's id of this item in its thread
   */
  item_id: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  summary: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.reasoning";
}
/**
 * A command the agent ran or tried, as it reports it once over (the gated tool call is recorded apart).
 */
export interface AgentCommand {
  command: string;
  cwd: string;
  duration_ms: number | null;
  exit_code: number | null;
  /**
   * the agent's id of this item in its thread
   */
  item_id: string;
  /**
   * bytes left out of the middle of the output (budget)
   */
  omitted_bytes: number;
  /**
   * the output as the agent saw it: head and tail within the budget
   */
  output: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: "completed" | "failed" | "declined" | "in-progress" | "other";
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.command";
}
/**
 * A patch the agent applied or tried, one diff per file.
 */
export interface AgentFileChange {
  changes: AgentFileDiff[];
  /**
   * the agent's id of this item in its thread
   */
  item_id: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: "completed" | "failed" | "declined" | "in-progress" | "other";
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.file_change";
}
export interface AgentFileDiff {
  diff: string;
  kind: "add" | "delete" | "update" | "other";
  move_path: string | null;
  omitted_bytes: number;
  path: string;
}
/**
 * Another tool of the agent's (an MCP tool, a web search, a dynamic tool), by name and outcome.
 */
export interface AgentToolUse {
  detail: string;
  /**
   * the agent's id of this item in its thread
   */
  item_id: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: "completed" | "failed" | "declined" | "in-progress" | "other";
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * mcp:<server>/<tool>, web_search or dynamic:<tool>
   */
  tool: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.tool";
}
/**
 * The agent's plan for the turn, each time it changes.
 */
export interface AgentPlan {
  explanation: string | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  steps: AgentPlanStep[];
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.plan";
}
export interface AgentPlanStep {
  status: "pending" | "in-progress" | "completed" | "other";
  step: string;
}
/**
 * Token usage after a model response: ``total`` so far in the thread, ``last`` for that response.
 */
export interface AgentTokens {
  context_window: number | null;
  last: AgentTokenCounts;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  total: AgentTokenCounts;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.tokens";
}
export interface AgentTokenCounts {
  cached_input: number;
  input: number;
  output: number;
  reasoning_output: number;
  total: number;
}
/**
 * The agent reported an error (e.g. its model endpoint failed); ``will_retry``: it tries again itself.
 */
export interface AgentError {
  message: string;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  /**
   * the agent step's name
   */
  step: string;
  /**
   * the agent's thread (codex: the app-server thread id)
   */
  thread_id: string;
  /**
   * the agent step's own tool call
   */
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turn_id: string;
  type: "agent.error";
  will_retry: boolean;
}
/**
 * The agent step's agent is done: its turn completed, failed or was interrupted.
 */
export interface AgentFinished {
  error: string | null;
  /**
   * SHA-256 (hex) of the previous line of the log as written, without its newline; for the first event, of 'codex-orchestrator:<run_id>' (records/chain.py)
   */
  prev_hash: string;
  run_id: string;
  /**
   * MAJOR.MINOR of this event schema; a reader refuses a MAJOR it does not know
   */
  schema_version: string;
  /**
   * position in the run's log, from 1, no gaps
   */
  seq: number;
  status: "completed" | "failed" | "interrupted";
  step: string;
  tool_call_id: string;
  /**
   * UTC time the event was recorded (ISO 8601)
   */
  ts: string;
  turns: number;
  type: "agent.finished";
}
