// A real approval: a run pauses on a real Prefect server (started here, stopped after), approvals() lists the
// question, approve() answers it through `codex-orchestrator approve`, and the run ends succeeded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApprovalError, Client } from "../dist/index.js";
import { assertSchemaEvents, CLI, scratch, startPrefectServer } from "../support/helpers.mjs";

const REQUEST = `\
task: node-approve
workspace: ws
approval_policy: on-request
profile: [read]
sandbox: none
steps:
  - name: fetch-like
    command: "true"
    capabilities: [network]
`;
// How long to keep asking for the paused flow run before giving up (a bound, not a timing being tested).
const PAUSE_DEADLINE_MS = 120_000;


/** The run's pending approval once its flow run is paused (approve needs the flow run id). */
async function pausedApproval(client, runId) {
  const deadline = Date.now() + PAUSE_DEADLINE_MS;
  for (;;) {
    const pending = await client.approvals();
    if (pending.length && pending[0].flow_run_id) return pending;
    assert.ok(Date.now() < deadline, `run ${runId} never paused for its approval`);
    await new Promise((settle) => setTimeout(settle, 200));
  }
}

test("a run pauses for approval, approvals() lists it, approve() answers it, the run succeeds", async (t) => {
  // Started by the test, not a file-level hook: a run that filters this test out starts no server.
  const server = await startPrefectServer();
  t.after(() => server.stop());
  const dir = scratch(t);
  mkdirSync(join(dir, "ws"));
  writeFileSync(join(dir, "request.yaml"), REQUEST);
  const client = new Client({ cli: CLI, cwd: join(dir, "ws"), env: server.env });
  const handle = client.run(join(dir, "request.yaml"), { runId: "node-run" });
  assert.equal(handle.runsDir, join(dir, "ws", ".runs"));
  assert.equal(handle.manifestPath, join(dir, "ws", ".runs", "node-approve", "cli", "node-run", "manifest.json"));

  const events = [];
  for await (const event of handle) {
    events.push(event);
    if (event.type === "approval.requested") break;
  }
  const requested = events.at(-1);
  assert.equal(requested.type, "approval.requested");
  assert.deepEqual(requested.needs, ["network"]);

  const pending = await pausedApproval(client, handle.runId);
  assert.equal(pending.length, 1);
  assert.equal(pending[0].run_id, "node-run");
  assert.equal(pending[0].approval_id, requested.approval_id);
  assert.equal(pending[0].outcome, "pending");
  assert.deepEqual(await client.approvals({ runId: "node-run" }), pending);
  assert.equal((await handle.pendingApproval()).approval_id, requested.approval_id);

  await client.approve(handle.runId, { reason: "node sdk test", remember: true });
  const summary = await handle.wait();
  assert.equal(summary.ok, true);
  assert.equal(summary.status, "succeeded");
  assert.equal(summary.exitCode, 0);
  assert.equal(summary.returnCode, 0);
  assert.equal(summary.manifest, handle.manifestPath);

  const all = [];
  for await (const event of handle) all.push(event);
  assertSchemaEvents(all);
  const resolved = all.find((e) => e.type === "approval.resolved");
  assert.equal(resolved.source, "human");
  assert.equal(resolved.outcome, "approved");
  assert.equal(resolved.answered_by, "cli");
  const manifest = await client.show(handle.runId);
  assert.equal(manifest.tool_calls[0].approval_source, "human");
  assert.equal(manifest.approvals[0].answer_reason, "node sdk test");
  assert.deepEqual(manifest.approvals[0].remembered, ['prefix_rule(pattern=["true"], decision="allow")']);
  assert.deepEqual(await client.approvals(), []);
  await assert.rejects(client.approve(handle.runId), ApprovalError);
});
