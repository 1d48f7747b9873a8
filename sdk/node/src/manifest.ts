// GENERATED from schemas/manifest.schema.json by scripts/generate-types.mjs (npm run generate). Do not edit.

/**
 * One run, as recorded in ``.runs/<task>/cli/<run-id>/manifest.json``: folded from the run's records.
 */
export interface Manifest {
  approval_cache?: CacheCounters;
  approvals?: ApprovalRecord[];
  created_at: string;
  error?: string | null;
  events_file?: string;
  exit_code?: number | null;
  finished_at?: string | null;
  gate_enabled?: boolean;
  goal?: string;
  heartbeat_at: string;
  /**
   * per instance: calls, busy time
   */
  instance_stats?: InstanceStats[];
  /**
   * the run's instances, up or down
   */
  instances?: InstanceState[];
  instructions?: InstructionRecord[];
  metrics?: RunMetrics;
  milestones?: MilestoneRecord[];
  mode?: "run" | "exec";
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
   * this run's directory, workspace-relative
   */
  run_dir: string;
  run_id: string;
  schema_version?: 1;
  status?:
    | "queued"
    | "running"
    | "awaiting-approval"
    | "succeeded"
    | "failed"
    | "denied"
    | "cancelled"
    | "interrupted";
  task_id: string;
  tool_calls?: ToolCallRecord[];
  traces_file?: string;
  updated_at: string;
  /**
   * always '.': every path here is relative to the workspace
   */
  workspace?: string;
}
export interface CacheCounters {
  hits?: number;
  misses?: number;
}
export interface ApprovalRecord {
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
  purpose: "capability" | "escalation";
  reason: string;
  requested_at: string;
  resolved_at?: string | null;
  /**
   * the name the reviewer gave, if any (redacted)
   */
  reviewer?: string | null;
  run_id?: string;
  sandbox?: string;
  source?: ("human" | "policy") | null;
  step?: string;
  task_id?: string;
  timeout_s?: number;
  tool?: string;
  tool_call_id: string;
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
export interface InstructionRecord {
  bytes: number;
  path: string;
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
export interface PrefectRecord {
  /**
   * the Prefect API that holds this run's flow runs
   */
  api_url?: string | null;
  parent_flow_run_id?: string | null;
}
export interface ToolCallRecord {
  /**
   * whether an approve-for-session grant was looked up, and found
   */
  approval_cache?: ("hit" | "miss") | null;
  approval_ids?: string[];
  approval_outcome?: ("skip" | "forbid" | "ask") | null;
  approval_reason?: string | null;
  approval_source?: ("not-required" | "cache" | "human" | "policy") | null;
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
   * the Prefect task run of this call
   */
  prefect_task_run_id?: string | null;
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
