// Compiled by `npm run typecheck` (never run): the public types narrow as users will write them.
import { Client, SchemaVersionError, type Event, type ExecSummary, type PendingApproval } from "../src/index.js";

export async function usage(): Promise<void> {
  const client = new Client({ cli: "codex-orchestrator" });
  const handle = client.exec(["make", "test"], { cwd: "repo", policy: "never", profile: ["read", "run"] });
  for await (const event of handle) {
    switch (event.type) {
      case "output":
        process.stdout.write(event.data);
        break;
      case "approval.requested":
        event.needs satisfies string[];
        break;
      case "summary":
        event.exit_code satisfies number | null;
        break;
      case "agent.command": // what the agent of an agent step ran, and how it ended
        event.status satisfies "completed" | "failed" | "declined" | "in-progress" | "other";
        event.exit_code satisfies number | null;
        break;
      case "agent.file_change":
        event.changes[0]?.diff satisfies string | undefined;
        break;
      case "agent.tokens":
        event.total.output satisfies number;
        break;
    }
  }
  const summary: ExecSummary = await handle.wait();
  summary.approvalSource satisfies string;
  summary.sandboxState satisfies string;
  const pending: PendingApproval[] = await client.approvals();
  if (pending[0]) await client.approve(pending[0].run_id, { approvalId: pending[0].approval_id, reason: "ok" });
  const run = client.run("request.yaml", { signal: AbortSignal.timeout(60_000) });
  (await run.wait()).status satisfies string;
  const all: Event[] = [];
  for await (const event of run.events()) all.push(event);
  try {
    await client.show("run-id");
  } catch (error) {
    if (error instanceof SchemaVersionError) error.found satisfies string | null;
  }
}
