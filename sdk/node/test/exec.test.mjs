// exec() against the real CLI: real PTY, real bubblewrap sandbox, real process trees.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Client, EVENTS_SCHEMA_VERSION, KilledError, SdkError, WaitTimeoutError } from "../dist/index.js";
import { assertSchemaEvents, CLI, collect, output, processGone, scratch } from "../support/helpers.mjs";

const client = (cwd) => new Client({ cli: CLI, cwd });

test("exec streams output events and returns the summary; the exit code passes through", async (t) => {
  const dir = scratch(t);
  const ok = await client(dir).exec(["true"]).wait();
  assert.equal(ok.ok, true);
  assert.equal(ok.returnCode, 0);

  const handle = client(dir).exec(["sh", "-c", "echo hi; exit 3"], { task: "node-exit" });
  const events = assertSchemaEvents(await collect(handle));
  const summary = await handle.wait();
  assert.equal(summary.status, "failed");
  assert.equal(summary.exitCode, 3);
  assert.equal(summary.returnCode, 3);
  assert.equal(summary.attempts, 1);
  assert.equal(summary.sandboxState, "sandboxed");
  assert.equal(summary.approvalSource, "not-required");
  assert.equal(summary.ok, false);
  assert.equal(events[0].type, "run.started");
  assert.equal(events.at(-2).type, "run.finished");
  assert.equal(events.at(-1).type, "summary");
  assert.match(output(events), /hi\r\n/);
  assert.deepEqual(new Set(events.map((e) => e.schema_version)), new Set([EVENTS_SCHEMA_VERSION]));
  assert.equal(summary.runId, handle.runId);
  assert.equal(events[0].run_id, handle.runId);
  const manifest = join(dir, ".runs", "node-exit", "cli", handle.runId, "manifest.json");
  assert.equal(summary.manifest, manifest);
  assert.equal(handle.manifestPath, manifest);
  assert.equal(JSON.parse(readFileSync(manifest, "utf8")).tool_calls[0].exit_code, 3);
  assert.equal(await handle.pendingApproval(), null);
  // events() replays from the first after the end.
  assert.deepEqual(await collect(handle.events()), events);
});

test("exec stdin round trip", async (t) => {
  const handle = client(scratch(t)).exec(["sh", "-c", "read x; echo got:$x"], { stdin: true });
  await handle.writeStdin("ping\n");
  await handle.closeStdin();
  const summary = await handle.wait();
  assert.equal(summary.ok, true);
  assert.match(output(await collect(handle)), /got:ping/);
  const noStdin = client(scratch(t)).exec(["true"]);
  await assert.rejects(noStdin.writeStdin("x"), /stdin: true/);
  await noStdin.wait();
});

test("a call the policy forbids is denied without running", async (t) => {
  const dir = scratch(t);
  const summary = await client(dir).exec(["touch", "f"], { policy: "never", profile: ["read"] }).wait();
  assert.equal(summary.status, "denied");
  assert.equal(summary.approvalSource, "policy");
  assert.equal(summary.returnCode, 125);
  assert.equal(summary.exitCode, null);
  assert.equal(existsSync(join(dir, "f")), false);
});

/** Start `sh` with a background child, without the sandbox (so the pids are this machine's), and read both pids
 * from its output. */
async function startTree(dir, options = {}) {
  const handle = client(dir).exec(["sh", "-c", "sleep 60 & echo pids:$$:$!; wait"], { sandbox: "none", ...options });
  let seen = "";
  for await (const event of handle) {
    if (event.type === "output") seen += event.data;
    const match = /pids:(\d+):(\d+)/.exec(seen);
    if (match) return { handle, pids: [Number(match[1]), Number(match[2])] };
  }
  throw new Error(`the command printed no pids: ${seen}`);
}

test("kill() interrupts the CLI, which ends the command's process tree and records the run", async (t) => {
  const { handle, pids } = await startTree(scratch(t));
  await handle.kill();
  await assert.rejects(handle.wait(), (error) => {
    assert.ok(error instanceof KilledError && error instanceof SdkError);
    assert.match(error.message, /without a summary: it was killed/);
    return true;
  });
  for (const pid of pids) assert.ok(processGone(pid), `process ${pid} survived kill()`);
  const manifest = JSON.parse(readFileSync(handle.manifestPath, "utf8"));
  assert.equal(manifest.status, "interrupted"); // an interrupt is recorded as such (exit 130)
  assert.ok(manifest.finished_at);
});

test("aborting the AbortSignal is kill()", async (t) => {
  const controller = new AbortController();
  const { handle, pids } = await startTree(scratch(t), { signal: controller.signal });
  await assert.rejects(handle.wait({ timeoutMs: 1 }), WaitTimeoutError); // still running: it waits for `sleep 60`
  controller.abort();
  await assert.rejects(handle.wait(), KilledError);
  for (const pid of pids) assert.ok(processGone(pid), `process ${pid} survived the abort`);
});
