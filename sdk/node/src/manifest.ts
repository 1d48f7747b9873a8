// GENERATED from schemas/manifest.schema.json by scripts/generate-types.mjs (npm run generate). Do not edit.

/**
 * One run, as recorded in ``.runs/<task>/cli/<run-id>/manifest.json``: folded from the run's records.
 */
export interface Manifest {
  /**
   * per agent step driven through its agent's protocol: its summary
   */
  agents?: AgentStepRecord[];
  approval_cache?: CacheCounters;
  approvals?: ApprovalRecord[];
  /**
   * the event log's hash-chain head, recorded when the run finished
   */
  chain?: ChainHead | null;
  created_at: string;
  /**
   * verification: what changed in the workspace, tool versions
   */
  diagnostics?: DiagnosticsRecord | null;
  /**
   * instruction drift since the previous run
   */
  drift?: DriftRecord | null;
  error?: string | null;
  events_file?: string;
  exit_code?: number | null;
  finished_at?: string | null;
  gate_enabled?: boolean;
  goal?: string;
  /**
   * verification: each guardrail's result, required or advisory
   */
  guardrails?: GuardrailRecord[];
  heartbeat_at: string;
  /**
   * per instance: calls, busy time
   */
  instance_stats?: InstanceStats[];
  /**
   * the run's instances, up or down
   */
  instances?: InstanceState[];
  /**
   * per distinct step cwd: its sources and combined hash
   */
  instruction_sets?: InstructionSetRecord[];
  instructions?: InstructionRecord[];
  metrics?: RunMetrics;
  milestones?: MilestoneRecord[];
  mode?: "run" | "exec";
  /**
   * notification targets that could not be told (the run went on)
   */
  notification_failures?: NotificationFailureRecord[];
  /**
   * the oldest pending approval
   */
  pending_approval?: ApprovalRecord | null;
  pending_approvals?: ApprovalRecord[];
  prefect?: PrefectRecord;
  /**
   * the request, secrets redacted
   */
  request?: {
    [k: string]: unknown;
  };
  /**
   * when the run was resumed, oldest first
   */
  resumed_at?: string[];
  /**
   * verification: the review before hand-off
   */
  review?: ReviewRecord | null;
  /**
   * the exec-policy rules files the run read, with their hashes
   */
  rules_files?: RulesFileRecord[];
  /**
   * this run's directory, workspace-relative
   */
  run_dir: string;
  run_id: string;
  schema_version?: 1;
  /**
   * verification: spec-guard's findings
   */
  spec_guard?: SpecGuardRecord | null;
  status?:
    | "queued"
    | "running"
    | "awaiting-approval"
    | "succeeded"
    | "failed"
    | "denied"
    | "cancelled"
    | "interrupted"
    | "changes-requested";
  task_id: string;
  telemetry?: TelemetryRecord;
  tool_calls?: ToolCallRecord[];
  traces_file?: string;
  updated_at: string;
  /**
   * always '.': every path here is relative to the workspace
   */
  workspace?: string;
}
/**
 * One agent step driven through its agent's protocol (agents/): folded from its ``agent.*`` events and
 * from the records of the tool calls the agent made (``parent_call_id``).
 */
export interface AgentStepRecord {
  /**
   * e.g. codex
   */
  agent: string;
  agent_version?: string;
  /**
   * the agent step's own tool call
   */
  call_id: string;
  /**
   * commands the agent reported (run, failed or declined)
   */
  commands?: number;
  error?: string | null;
  /**
   * errors the agent reported (e.g. its model endpoint failing)
   */
  errors?: number;
  /**
   * patches the agent reported
   */
  file_changes?: number;
  /**
   * the agent's last message (its answer)
   */
  final_message?: string | null;
  messages?: number;
  /**
   * times an earlier run's thread was resumed
   */
  resumed?: number;
  status?: "running" | "completed" | "failed" | "interrupted";
  step: string;
  thread_id?: string | null;
  tokens?: AgentTokenTotals;
  /**
   * in the order they began
   */
  tool_calls?: AgentToolCallRef[];
  /**
   * the agent's tool calls by status (denied: the agent was refused)
   */
  tool_calls_by_status?: {
    [k: string]: number;
  };
  /**
   * turns finished, over every run of the step
   */
  turns?: number;
}
/**
 * Tokens the agent's model used over the step (every model response's usage, summed).
 */
export interface AgentTokenTotals {
  cached_input?: number;
  input?: number;
  output?: number;
  reasoning_output?: number;
  total?: number;
}
/**
 * One of the agent's tool calls, as its record says (``tool_calls`` has the whole record).
 */
export interface AgentToolCallRef {
  approval_source?: string | null;
  command: string;
  error?: string | null;
  id: string;
  kind: string;
  status:
    "pending" | "awaiting-approval" | "running" | "succeeded" | "failed" | "denied" | "timed-out" | "skipped";
}
export interface CacheCounters {
  hits?: number;
  misses?: number;
}
export interface ApprovalRecord {
  /**
   * the prefixes approve-and-remember would allow from now on
   */
  amendment?: string[][];
  answer_reason?: string | null;
  /**
   * the channel the answer came through: prefect-ui, cli, terminal, sdk, auto-reviewer, timeout or none; set by the channel, never typed by the reviewer
   */
  answered_by?: string | null;
  approval_id: string;
  /**
   * hostname:pid of the process waiting for the answer
   */
  asked_by?: string | null;
  /**
   * the redacted command asked about
   */
  command?: string;
  cwd?: string;
  /**
   * the paused Prefect flow run that waits for the answer
   */
  flow_run_id?: string | null;
  for_session?: boolean;
  needs?: string[];
  outcome?: "pending" | "approved" | "denied" | "cancelled";
  purpose: "capability" | "escalation" | "instructions";
  reason: string;
  /**
   * approve-and-remember: the rule lines appended
   */
  remembered?: string[];
  /**
   * the rules file they were appended to
   */
  remembered_to?: string | null;
  requested_at: string;
  resolved_at?: string | null;
  /**
   * the name the reviewer gave, if any (redacted)
   */
  reviewer?: string | null;
  /**
   * the rule that asked (a prompt rule), if any
   */
  rule?: RuleRecord | null;
  run_id?: string;
  sandbox?: string;
  source?: ("human" | "policy") | null;
  step?: string;
  task_id?: string;
  timeout_s?: number;
  tool?: string;
  tool_call_id: string;
}
/**
 * The exec-policy rule that decided a call (codex_orchestrator/rules).
 */
export interface RuleRecord {
  decision: "allow" | "prompt" | "forbidden";
  /**
   * the rules file: workspace-relative, or $CODEX_HOME/rules/<name>
   */
  file: string;
  justification?: string | null;
  /**
   * the command's tokens it matched
   */
  matched_prefix?: string[];
  /**
   * the rule's pattern as written, e.g. ["git", "push"]
   */
  pattern: string;
}
/**
 * The event log's last link when the run finished: ``codex-orchestrator verify`` checks the log against it.
 */
export interface ChainHead {
  /**
   * SHA-256 (hex) of that event's line as written, without its newline
   */
  hash: string;
  /**
   * seq of the log's last event
   */
  seq: number;
}
/**
 * What changed in the workspace during the run, and the tools it ran with.
 */
export interface DiagnosticsRecord {
  /**
   * HEAD when the run began (foundation)
   */
  base_commit?: string | null;
  /**
   * changed, but by no edit step
   */
  command_files?: string[];
  deletions?: number;
  /**
   * written by edit steps
   */
  edited_files?: string[];
  /**
   * why the change could not be measured
   */
  error?: string | null;
  files?: ChangedFile[];
  files_changed?: number;
  /**
   * HEAD when verification began
   */
  head_commit?: string | null;
  insertions?: number;
  recorded_at?: string | null;
  /**
   * tool -> version (first line)
   */
  tools?: {
    [k: string]: string;
  };
}
export interface ChangedFile {
  /**
   * written by an edit step, or changed by commands
   */
  by: "edit" | "command";
  deletions?: number | null;
  /**
   * None for a binary file
   */
  insertions?: number | null;
  /**
   * workspace-relative
   */
  path: string;
}
/**
 * The run's instruction sources compared with the previous run of the same task.
 */
export interface DriftRecord {
  /**
   * on_instruction_drift: ask — the approval
   */
  approval_id?: string | null;
  changes?: DriftChange[];
  decision?: "recorded" | "warned" | "pending" | "approved" | "denied";
  policy?: "ignore" | "warn" | "ask";
  /**
   * None: no earlier run recorded any
   */
  previous_run_id?: string | null;
  status: "first-run" | "unchanged" | "drifted";
}
export interface DriftChange {
  change: "added" | "removed" | "changed";
  path: string;
  sha256_after?: string | null;
  sha256_before?: string | null;
}
export interface GuardrailRecord {
  /**
   * the tool call that ran it (None: in-process)
   */
  call_id?: string | null;
  /**
   * why it failed, errored or was skipped
   */
  detail?: string | null;
  exit_code?: number | null;
  name: string;
  required?: boolean;
  result: "passed" | "failed" | "skipped" | "error";
}
export interface InstanceStats {
  busy_ms?: number;
  calls?: number;
  failures?: number;
  name: string;
  status?: "up" | "down";
}
export interface InstanceState {
  name: string;
  /**
   * why it was marked down
   */
  reason?: string | null;
  status?: "up" | "down";
}
/**
 * What a step running in ``cwd`` is given (codex's hierarchy, docs/instructions.md).
 */
export interface InstructionSetRecord {
  bytes: number;
  cwd: string;
  /**
   * of the combined text
   */
  sha256: string;
  /**
   * the paths of its sources, root first
   */
  sources?: string[];
  truncated?: boolean;
  /**
   * e.g. a file cut at the byte budget
   */
  warnings?: string[];
}
export interface InstructionRecord {
  bytes: number;
  /**
   * how much of it the byte budget kept
   */
  included_bytes?: number | null;
  /**
   * workspace-relative; a global file as $CODEX_HOME/<name>
   */
  path: string;
  scope?: "global" | "project" | "extra";
  /**
   * of the whole file, whatever the byte budget kept
   */
  sha256: string;
}
export interface RunMetrics {
  approvals_by_source?: {
    [k: string]: number;
  };
  attempts?: number;
  cache_hits?: number;
  cache_misses?: number;
  denied?: number;
  duration_ms?: number | null;
  failed?: number;
  guardrails_failed?: number;
  guardrails_passed?: number;
  retries?: number;
  succeeded?: number;
  timed_out?: number;
  tool_call_ms_total?: number;
  tool_calls?: number;
}
export interface MilestoneRecord {
  finished_at?: string | null;
  flow_run_id?: string | null;
  name: "foundation" | "exec" | "telemetry" | "verification";
  started_at?: string | null;
  status?: "pending" | "running" | "succeeded" | "failed" | "skipped";
}
export interface NotificationFailureRecord {
  at: string;
  detail: string;
  event: string;
  target: string;
}
export interface PrefectRecord {
  /**
   * the Prefect API that holds this run's flow runs
   */
  api_url?: string | null;
  parent_flow_run_id?: string | null;
}
export interface ReviewRecord {
  answered_at?: string | null;
  /**
   * the channel: prefect-ui, cli, terminal, sdk, reviewer, timeout, policy
   */
  answered_by?: string | null;
  /**
   * who answered: a reviewer's name or the reviewer command
   */
  by?: string | null;
  /**
   * the review command's tool call
   */
  command_call_id?: string | null;
  /**
   * its output (tail, redacted)
   */
  command_output?: string | null;
  comments?: string | null;
  /**
   * the paused Prefect flow run of the review
   */
  flow_run_id?: string | null;
  policy?: "required" | "optional" | "off";
  requested_at?: string | null;
  /**
   * the reviewer command's tool call
   */
  reviewer_call_id?: string | null;
  source?: ("human" | "reviewer" | "policy") | null;
  status?: "pending" | "answered";
  verdict?: ("approved" | "changes-requested" | "skipped") | null;
}
/**
 * A rules file the run read, fingerprinted like an instruction file.
 */
export interface RulesFileRecord {
  bytes: number;
  /**
   * workspace-relative; a user file as $CODEX_HOME/rules/<name>
   */
  path: string;
  scope?: "user" | "project" | "request";
  sha256: string;
}
export interface SpecGuardRecord {
  /**
   * the revision the change is measured from
   */
  base?: string | null;
  /**
   * changed code files
   */
  code_files?: string[];
  detail?: string | null;
  findings?: SpecFinding[];
  required?: boolean;
  /**
   * changed spec/task documents
   */
  spec_files?: string[];
  status: "passed" | "failed" | "skipped" | "error";
}
export interface SpecFinding {
  /**
   * workspace-relative
   */
  file: string;
  message: string;
  rule: "spec-not-updated" | "stale-review";
}
/**
 * Where the run's spans and metrics went (docs/telemetry.md).
 */
export interface TelemetryRecord {
  /**
   * scheme://host:port of the OTLP endpoint
   */
  endpoint?: string | null;
  /**
   * otlp: sent to the endpoint; off: traces.jsonl only; sdk-disabled: OTEL_SDK_DISABLED
   */
  export?: "otlp" | "off" | "sdk-disabled";
  export_failures?: ExportFailures;
  /**
   * the request's telemetry.export
   */
  export_requested?: boolean;
  /**
   * http/protobuf or grpc
   */
  protocol?: string | null;
}
/**
 * OTLP export failures while the run ran, in the process that owns it (each counted once).
 */
export interface ExportFailures {
  /**
   * spans and metric collections given up on
   */
  dropped?: number;
  last_error?: string | null;
  /**
   * failed export attempts of metrics
   */
  metrics?: number;
  /**
   * failed export attempts of spans
   */
  traces?: number;
}
export interface ToolCallRecord {
  /**
   * whether an approve-for-session grant was looked up, and found
   */
  approval_cache?: ("hit" | "miss") | null;
  approval_ids?: string[];
  approval_outcome?: ("skip" | "forbid" | "ask") | null;
  approval_reason?: string | null;
  approval_source?: ("not-required" | "cache" | "human" | "policy" | "hook") | null;
  attempts?: AttemptRecord[];
  backend?: string;
  /**
   * redacted command line
   */
  command: string;
  /**
   * workspace-relative working directory; on an SSH backend the remote one
   */
  cwd: string;
  /**
   * steps this one waited for (step graph)
   */
  depends_on?: string[];
  duration_ms?: number | null;
  error?: string | null;
  exit_code?: number | null;
  /**
   * why a call without an exit code of its own failed: the command could not start, or the SSH connection failed (connect or authenticate, host key) or was lost while it ran
   */
  failure?: ("not-started" | "ssh-connect" | "ssh-host-key" | "ssh-connection-lost") | null;
  /**
   * fetch: the URL the body came from, after redirects
   */
  final_url?: string | null;
  finished_at?: string | null;
  guard?: GuardRecord;
  /**
   * lifecycle hooks' decisions (hooks.py)
   */
  hooks?: HookRecord[];
  /**
   * hostname and pid of the process that ran the call
   */
  host?: string | null;
  id: string;
  /**
   * the instance (this machine or an SSH host) it ran on
   */
  instance?: string;
  kind: string;
  /**
   * earlier runs of this call (a resumed run reruns unfinished calls)
   */
  lineage?: CallRun[];
  milestone: string;
  needs?: string[];
  omitted_bytes?: number;
  /**
   * seq of the call's first event: the manifest lists calls by it
   */
  order?: number;
  output_bytes?: number;
  output_tail?: string;
  /**
   * an agent's own tool call: the call id of the agent step that made it
   */
  parent_call_id?: string | null;
  /**
   * the Prefect task run of this call
   */
  prefect_task_run_id?: string | null;
  /**
   * the exec-policy rule that decided, if one did
   */
  rule?: RuleRecord | null;
  sandbox?: SandboxRecord;
  session_id?: string | null;
  started_at?: string | null;
  status?:
    "pending" | "awaiting-approval" | "running" | "succeeded" | "failed" | "denied" | "timed-out" | "skipped";
  step: string;
  updated_at?: string | null;
}
export interface AttemptRecord {
  attempt: number;
  duration_ms: number;
  error?: string | null;
  exit_code?: number | null;
  /**
   * delay before the next attempt, if one followed
   */
  retry_delay_s?: number | null;
  sandboxed?: boolean;
  started_at: string;
}
export interface GuardRecord {
  mode?: "streaming" | "buffered";
  p50_ms?: number | null;
  p95_ms?: number | null;
  p99_ms?: number | null;
  samples?: number;
  switched?: boolean;
  threshold_ms?: number | null;
}
/**
 * What a lifecycle hook (hooks.py) decided about a call.
 */
export interface HookRecord {
  /**
   * what the hook added (pre: given to the command)
   */
  context?: string | null;
  /**
   * allow; deny (pre: the call did not run); block (post: the hook objected to the result); error (the hook itself failed: the call went on)
   */
  decision: "allow" | "deny" | "block" | "error";
  duration_ms?: number;
  exit_code?: number | null;
  hook: "pre_tool_call" | "post_tool_call";
  reason?: string | null;
}
/**
 * One earlier, unfinished or failed run of a call that a resume started again.
 */
export interface CallRun {
  attempts?: number;
  error?: string | null;
  /**
   * hostname:pid of the process that ran it
   */
  host?: string | null;
  /**
   * where this earlier run ran
   */
  instance?: string | null;
  started_at?: string | null;
  status: string;
}
export interface SandboxRecord {
  denial?: string | null;
  detail?: string | null;
  evidence?: string | null;
  mode?: string;
  state?: string;
}
