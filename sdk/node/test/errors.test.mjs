// Each failure becomes a typed error carrying the CLI's stderr tail. The real CLI covers the missing CLI, exit 2
// and unknown runs; support/fake-cli.mjs stands in only for what a real CLI cannot be made to do on demand (print a
// non-JSON line, crash mid-stream, speak another major schema version).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  ApprovalError,
  CliCrashedError,
  CliNotFoundError,
  Client,
  checkSchemaVersion,
  EVENTS_SCHEMA_VERSION,
  ProtocolError,
  SchemaVersionError,
  SdkError,
  UsageError,
} from "../dist/index.js";
import { CLI, collect, FAKE_CLI, scratch } from "../support/helpers.mjs";

const fake = (mode, cwd) =>
  new Client({ cli: [process.execPath, FAKE_CLI], env: { FAKE_CLI_MODE: mode }, cwd });

test("a missing CLI is a CliNotFoundError, for exec, run, approve and show", async (t) => {
  const dir = scratch(t);
  const missing = new Client({ cli: join(dir, "no-such-cli"), cwd: dir });
  const handle = missing.exec(["true"]);
  await assert.rejects(collect(handle), CliNotFoundError); // the iterator ends with it too
  await assert.rejects(handle.wait(), (error) => {
    assert.ok(error instanceof CliNotFoundError && error instanceof SdkError);
    assert.equal(error.program, join(dir, "no-such-cli"));
    assert.match(error.message, /not found.*CODEX_ORCHESTRATOR_CLI/);
    return true;
  });
  writeFileSync(join(dir, "r.yaml"), "task: t\nworkspace: .\nsteps: [{name: s, command: ls}]\n");
  await assert.rejects(missing.run("r.yaml").wait(), CliNotFoundError);
  await assert.rejects(missing.approve("some-run"), CliNotFoundError);
  await assert.rejects(missing.show("some-run"), CliNotFoundError);
});

test("without a cli option the CLI is CODEX_ORCHESTRATOR_CLI, else codex-orchestrator on PATH", async (t) => {
  const saved = process.env.CODEX_ORCHESTRATOR_CLI;
  t.after(() => {
    if (saved === undefined) delete process.env.CODEX_ORCHESTRATOR_CLI;
    else process.env.CODEX_ORCHESTRATOR_CLI = saved;
  });
  process.env.CODEX_ORCHESTRATOR_CLI = CLI;
  const fromEnv = new Client({ cwd: scratch(t) });
  assert.deepEqual(fromEnv.command, [CLI]);
  assert.equal((await fromEnv.exec(["true"]).wait()).ok, true);

  delete process.env.CODEX_ORCHESTRATOR_CLI;
  const onPath = new Client({ cwd: scratch(t), env: { PATH: `${dirname(CLI)}:${process.env.PATH}` } });
  assert.deepEqual(onPath.command, ["codex-orchestrator"]);
  assert.equal((await onPath.exec(["true"]).wait()).ok, true);
  const nowhere = new Client({ cwd: scratch(t), env: { PATH: scratch(t) } });
  await assert.rejects(nowhere.exec(["true"]).wait(), CliNotFoundError);
});

test("exit 2 on a bad option is a UsageError with the CLI's message and stderr tail; nothing is written", async (t) => {
  const dir = scratch(t);
  const handle = new Client({ cli: CLI, cwd: dir }).exec(["true"], { policy: "sometimes" });
  assert.deepEqual(await collect(handle), []);
  await assert.rejects(handle.wait(), (error) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.returnCode, 2);
    assert.match(error.message, /--policy: unknown value 'sometimes'/);
    assert.match(error.stderrTail, /sometimes/);
    return true;
  });
  assert.equal(existsSync(join(dir, ".runs")), false);
  assert.throws(() => new Client({ cli: CLI }).exec(["true"], { polcy: "never" }), /unexpected options polcy/);
});

test("a YAML alias bomb is a UsageError naming the aliases, and nothing is written", async (t) => {
  const dir = scratch(t);
  const levels = ["a0: &a0 [x,x,x,x,x,x,x,x,x]"];
  for (let i = 1; i < 9; i++) levels.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(",")}]`);
  writeFileSync(
    join(dir, "bomb.yaml"),
    `${levels.join("\n")}\ntask: bomb\nworkspace: .\nsteps: [{name: s, command: "true"}]\n`,
  );
  await assert.rejects(new Client({ cli: CLI, cwd: dir }).run("bomb.yaml").wait(), (error) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.returnCode, 2);
    assert.match(error.message, /YAML aliases expand it/);
    return true;
  });
  assert.equal(existsSync(join(dir, ".runs")), false);
});

test("a bad request, an unknown run, and approving a run without a pending approval", async (t) => {
  const dir = scratch(t);
  const client = new Client({ cli: CLI, cwd: dir });
  writeFileSync(
    join(dir, "request.yaml"),
    "task: t\nworkspace: .\napproval_policy: sometimes\nsteps: [{name: s, command: ls}]\n",
  );
  await assert.rejects(client.run("request.yaml").wait(), (error) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, /approval_policy/);
    return true;
  });
  assert.equal(existsSync(join(dir, ".runs")), false);
  for (const call of [
    () => client.approve("no-such-run"),
    () => client.show("no-such-run"),
    () => client.approvals({ runId: "no-such-run" }),
  ]) {
    await assert.rejects(call, (error) => error instanceof UsageError && /no-such-run/.test(error.message));
  }
  const done = await client.exec(["true"]).wait();
  await assert.rejects(client.approve(done.runId), (error) => {
    assert.ok(error instanceof ApprovalError);
    assert.equal(error.returnCode, 1);
    assert.match(error.message, /no pending approval/);
    return true;
  });
  assert.deepEqual(await client.approvals(), []);
  assert.equal((await client.show(done.runId)).status, "succeeded");
});

test("a line that is not JSON is a ProtocolError, after the good events", async (t) => {
  const handle = fake("not-json", scratch(t)).exec(["true"]);
  const seen = [];
  await assert.rejects(
    (async () => {
      for await (const event of handle) seen.push(event.type);
    })(),
    ProtocolError,
  );
  assert.deepEqual(seen, ["run.started"]);
  await assert.rejects(handle.wait(), (error) => {
    assert.ok(error instanceof ProtocolError && !(error instanceof SchemaVersionError));
    assert.match(error.message, /not a JSON event: "Traceback/);
    assert.match(error.stderrTail, /printed garbage/);
    assert.equal(error.returnCode, 0);
    return true;
  });
});

test("a CLI that dies mid-stream is a CliCrashedError with its stderr", async (t) => {
  const handle = fake("crash", scratch(t)).exec(["true"]);
  assert.deepEqual((await collect(handle)).map((e) => e.type), ["run.started"]);
  await assert.rejects(handle.wait(), (error) => {
    assert.ok(error instanceof CliCrashedError);
    assert.equal(error.signal, "SIGKILL");
    assert.match(error.message, /ended without a summary \(killed by SIGKILL\): .*the fake CLI crashed/);
    assert.match(error.stderrTail, /internal error/);
    return true;
  });
});

test("events of another major schema version are a SchemaVersionError", async (t) => {
  const handle = fake("future", scratch(t)).exec(["true"]);
  await assert.rejects(handle.wait(), (error) => {
    assert.ok(error instanceof SchemaVersionError && error instanceof ProtocolError);
    assert.equal(error.found, "2.0");
    assert.equal(error.expected, EVENTS_SCHEMA_VERSION); // the version this SDK was generated from
    assert.match(error.message, /schema version 2\.0, but this SDK reads 1\.x/);
    return true;
  });
  assert.doesNotThrow(() => checkSchemaVersion("1.9"));
  assert.throws(() => checkSchemaVersion(undefined), /no schema_version/);
});
