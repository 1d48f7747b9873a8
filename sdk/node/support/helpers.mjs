// Shared by the tests: which CLI to test (env CODEX_ORCHESTRATOR_CLI, set by `make test`, else the worktree's
// .venv), scratch directories, an event checker against schemas/events.schema.json, and a real Prefect server.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, "..", "..", "..");
export const CLI = process.env.CODEX_ORCHESTRATOR_CLI || join(ROOT, ".venv", "bin", "codex-orchestrator");
export const FAKE_CLI = join(here, "fake-cli.mjs");

export function scratch(t) {
  const dir = mkdtempSync(join(tmpdir(), "co-node-sdk-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const schema = JSON.parse(readFileSync(join(ROOT, "schemas", "events.schema.json"), "utf8"));

/** Each event must be one of the schema's: known type, every required field, no field the schema lacks; and seq
 * must count from 1. */
export function assertSchemaEvents(events) {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
  );
  for (const event of events) {
    const ref = schema.discriminator.mapping[event.type];
    assert.ok(ref, `unknown event type ${event.type}`);
    const def = schema.$defs[ref.split("/").at(-1)];
    for (const field of def.required) assert.ok(field in event, `${event.type} lacks ${field}`);
    for (const field of Object.keys(event)) assert.ok(field in def.properties, `${event.type} has no field ${field}`);
  }
  return events;
}

export async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export function output(events) {
  return events.filter((e) => e.type === "output").map((e) => e.data).join("");
}

/** Whether process `pid` is gone (a zombie waiting to be reaped counts as gone: it runs nothing). */
export function processGone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

function freePort() {
  return new Promise((settle, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => settle(port));
    });
  });
}

const SERVER_START_DEADLINE_MS = 180_000;

/** `prefect server start` on a free loopback port with its own PREFECT_HOME; resolves to { apiUrl, env, stop }. */
export async function startPrefectServer() {
  const home = mkdtempSync(join(tmpdir(), "co-node-prefect-"));
  const port = await freePort();
  const sibling = join(dirname(CLI), "prefect");
  const prefect = process.env.PREFECT_BIN || (existsSync(sibling) ? sibling : "prefect");
  const env = { ...process.env, PREFECT_HOME: home, PREFECT_SERVER_ANALYTICS_ENABLED: "false" };
  delete env.PREFECT_API_URL;
  const server = spawn(prefect, ["server", "start", "--host", "127.0.0.1", "--port", String(port)], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
    detached: true, // its own process group, so stop() ends uvicorn too
  });
  let stderr = "";
  server.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise((settle) => server.once("exit", settle));
  const apiUrl = `http://127.0.0.1:${port}/api`;
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      process.kill(-server.pid, "SIGTERM");
      const timer = setTimeout(() => process.kill(-server.pid, "SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(home, { recursive: true, force: true });
  };
  const deadline = Date.now() + SERVER_START_DEADLINE_MS;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`prefect server exited ${server.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${apiUrl}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prefect server did not answer on ${apiUrl}: ${stderr}`);
    }
    await new Promise((settle) => setTimeout(settle, 250));
  }
  return { apiUrl, env: { PREFECT_API_URL: apiUrl, PREFECT_HOME: home, PREFECT_SERVER_ANALYTICS_ENABLED: "false" }, stop };
}
