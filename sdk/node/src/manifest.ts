// GENERATED from schemas/manifest.schema.json by scripts/generate-types.mjs (npm run generate). Do not edit.

/**
 * One run, as recorded in ``.runs/<task>/cli/<run-id>/manifest.json``.
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
  instructions?: InstructionRecord[];
  metrics?: RunMetrics;
  milestones?: MilestoneRecord[];
  mode?: "run" | "exec";
  pending_approval?: ApprovalRecord | null;
  prefect?: PrefectRecord;
  /**
   * the request, secrets redacted
   */
  request?: {
    [k: string]: unknown;
  };
  /**
   * this run's directory, workspace-relative
   */
  run_dir: string;
  run_id: string;
  schema_version?: 1;
  status?: "queued" | "running" | "awaiting-approval" | "succeeded" | "failed" | "denied" | "cancelled";
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
   * prefect-ui, cli, terminal, sdk, auto-reviewer or timeout
   */
  answered_by?: string | null;
  approval_id: string;
  /**
   * the paused Prefect flow run that waits for the answer
   */
  flow_run_id?: string | null;
  for_session?: boolean;
  needs?: string[];
  outcome?: "pending" | "approved" | "denied";
  purpose: "capability" | "escalation";
  reason: string;
  requested_at: string;
  resolved_at?: string | null;
  source?: ("human" | "policy") | null;
  tool_call_id: string;
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
   * workspace-relative working directory
   */
  cwd: string;
  duration_ms?: number | null;
  error?: string | null;
  exit_code?: number | null;
  finished_at?: string | null;
  guard?: GuardRecord;
  id: string;
  kind: string;
  milestone: string;
  needs?: string[];
  omitted_bytes?: number;
  output_bytes?: number;
  output_tail?: string;
  prefect_task_run_id?: string | null;
  sandbox?: SandboxRecord;
  session_id?: string | null;
  started_at?: string | null;
  status?: "pending" | "awaiting-approval" | "running" | "succeeded" | "failed" | "denied" | "timed-out";
  step: string;
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
export interface SandboxRecord {
  denial?: string | null;
  detail?: string | null;
  evidence?: string | null;
  mode?: string;
  state?: string;
}
